package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Local is a Store on a local file system.
type Local struct{ root string }

// NewLocal roots a store at dir (created on first write if missing).
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", dir, err)
	}
	return &Local{root: abs}, nil
}

func (l *Local) abs(p string) (string, error) {
	rel, err := cleanRel(p)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(rel)), nil
}

// URL implements Store.
func (l *Local) URL(p string) string {
	a, err := l.abs(p)
	if err != nil {
		return p
	}
	return a
}

// List implements Store.
func (l *Local) List(_ context.Context, prefix string) ([]Object, error) {
	dir, err := l.abs(prefix)
	if err != nil {
		return nil, err
	}
	// WalkDir does not follow a symlinked start folder: walk its target,
	// naming objects by their path under the link.
	walk := dir
	if target, err := filepath.EvalSymlinks(dir); err == nil {
		walk = target
	}
	dirRel, _ := filepath.Rel(l.root, dir)
	var out []Object
	err = filepath.WalkDir(walk, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == walk {
				return fmt.Errorf("%s: %w", dir, ErrNotExist)
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(walk, path)
		rel = filepath.Join(dirRel, rel)
		out = append(out, Object{Path: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime().UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// ListDirs implements Store.
func (l *Local) ListDirs(_ context.Context, prefix string) ([]string, error) {
	dir, err := l.abs(prefix)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list %s: %w", dir, ErrNotExist)
		}
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

type localFile struct {
	*os.File
	size int64
}

func (f localFile) Size() int64 { return f.size }

// Open implements Store.
func (l *Local) Open(_ context.Context, p string) (File, error) {
	a, err := l.abs(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(a)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", a, ErrNotExist)
		}
		return nil, fmt.Errorf("open %s: %w", a, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", a, err)
	}
	return localFile{File: f, size: st.Size()}, nil
}

// atomicFile writes to a hidden temporary file beside the target and renames
// it into place on Close, after an fsync, so a crash leaves either nothing or
// the whole object (plus, at worst, a hidden temp file that List skips).
type atomicFile struct {
	*os.File
	final string
	done  bool
}

func (a *atomicFile) Close() error {
	if a.done {
		return nil
	}
	a.done = true
	if err := a.File.Sync(); err != nil {
		a.File.Close()
		os.Remove(a.File.Name())
		return fmt.Errorf("sync %s: %w", a.final, err)
	}
	if err := a.File.Close(); err != nil {
		os.Remove(a.File.Name())
		return fmt.Errorf("close %s: %w", a.final, err)
	}
	if err := os.Rename(a.File.Name(), a.final); err != nil {
		os.Remove(a.File.Name())
		return fmt.Errorf("publish %s: %w", a.final, err)
	}
	return nil
}

// Create implements Store.
func (l *Local) Create(_ context.Context, p string) (io.WriteCloser, error) {
	a, err := l.abs(p)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(a), 0o755); err != nil {
		return nil, fmt.Errorf("create folder for %s: %w", a, err)
	}
	f, err := os.CreateTemp(filepath.Dir(a), "."+filepath.Base(a)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", a, err)
	}
	return &atomicFile{File: f, final: a}, nil
}

// Delete implements Store.
func (l *Local) Delete(_ context.Context, p string) error {
	a, err := l.abs(p)
	if err != nil {
		return err
	}
	if err := os.Remove(a); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", a, err)
	}
	return nil
}
