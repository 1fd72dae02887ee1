package spill

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/icefill/icefill/internal/errkind"
)

// Dir is this process's own spill folder, <base>/icefill-spill/<pid>-<n>,
// holding a lock file the process keeps locked (flock) while it lives. The
// kernel drops the lock when the process dies, however it dies, so a later
// run that can take the lock of a folder knows its owner is gone and
// removes the folder: leftovers of a killed process never accumulate.
type Dir struct {
	Path string
	lock *os.File
}

// DefaultBase is the spill base when --spill-dir is not given.
func DefaultBase() string { return os.TempDir() }

const dirName = "icefill-spill"

// OpenDir creates this process's spill folder under base, first removing
// the folders of dead processes there.
func OpenDir(base string) (*Dir, error) {
	if base == "" {
		base = DefaultBase()
	}
	root := filepath.Join(base, dirName)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, errkind.Usagef("spill directory %s: %v (pass --spill-dir)", base, err)
	}
	RemoveStale(root)
	path, err := os.MkdirTemp(root, fmt.Sprintf("%d-", os.Getpid()))
	if err != nil {
		return nil, errkind.Usagef("spill directory %s: %v (pass --spill-dir)", base, err)
	}
	lock, err := os.OpenFile(filepath.Join(path, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(path)
		return nil, fmt.Errorf("lock spill folder %s: %w", path, err)
	}
	fmt.Fprintf(lock, "%d\n", os.Getpid())
	return &Dir{Path: path, lock: lock}, nil
}

// RemoveStale removes the folders under root whose lock no live process
// holds. A folder without a lock file is one whose owner died between
// creating it and locking it, or a partly removed one.
func RemoveStale(root string) (removed []string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(root, e.Name())
		f, err := os.OpenFile(filepath.Join(p, "lock"), os.O_RDWR, 0)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && ownerGone(e.Name()) {
				os.RemoveAll(p)
				removed = append(removed, p)
			}
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(p)
			removed = append(removed, p)
		}
		f.Close()
	}
	return removed
}

// ownerGone reports whether the pid a folder is named after is not alive
// (only for folders without a lock file).
func ownerGone(name string) bool {
	var pid int
	if _, err := fmt.Sscanf(strings.SplitN(name, "-", 2)[0], "%d", &pid); err != nil || pid <= 0 {
		return true
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// Close removes the folder and everything in it.
func (d *Dir) Close() error {
	if d == nil || d.lock == nil {
		return nil
	}
	err := os.RemoveAll(d.Path)
	d.lock.Close()
	d.lock = nil
	return err
}

// fullError turns a failed spill write into the error the user can act
// on: a full disk names the folder and the space the job needs.
func fullError(dir string, need int64, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errkind.Usagef("spill directory %s is full: this partition needs about %s of spill space; free space there or pass --spill-dir on a larger local disk (%v)",
			dir, FormatSize(need), err)
	}
	return fmt.Errorf("write spill file in %s: %w", dir, err)
}
