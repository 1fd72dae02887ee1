package spill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/icefill/icefill/internal/errkind"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2GiB": 2 << 30, "1.5G": 3 << 29, "300m": 300 << 20, "1048576": 1 << 20, "64 KiB": 64 << 10} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "-1GiB", "0", "12XB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestFullDiskIsAUsageErrorNamingTheFolder(t *testing.T) {
	err := fullError("/mnt/spill", 3<<30, &os.PathError{Op: "write", Path: "/mnt/spill/x", Err: syscall.ENOSPC})
	if k, _ := errkind.Of(err); k != errkind.Usage {
		t.Fatalf("kind %v, want usage: %v", k, err)
	}
	if !strings.Contains(err.Error(), "/mnt/spill") || !strings.Contains(err.Error(), "3.0 GiB") {
		t.Fatalf("message lacks the folder or the space: %v", err)
	}
	other := fullError("/mnt/spill", 1, &os.PathError{Op: "write", Path: "/mnt/spill/x", Err: syscall.EIO})
	if k, _ := errkind.Of(other); k == errkind.Usage {
		t.Fatalf("an I/O error is not the user's to fix: %v", other)
	}
}

// TestStaleFoldersRemoved: a folder whose lock nobody holds (its process
// died) goes; a live process's folder stays.
func TestStaleFoldersRemoved(t *testing.T) {
	base := t.TempDir()
	live, err := OpenDir(base)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	root := filepath.Join(base, dirName)
	dead := filepath.Join(root, "999999-1")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead, "lock"), []byte("999999\n"), 0o600)
	os.WriteFile(filepath.Join(dead, "d2024-01-01-00000"), []byte("x"), 0o600)
	unlocked := filepath.Join(root, "999998-2") // died before locking
	os.MkdirAll(unlocked, 0o700)
	second, err := OpenDir(base)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	for _, p := range []string{dead, unlocked} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s of a dead process survived", p)
		}
	}
	if _, err := os.Stat(live.Path); err != nil {
		t.Errorf("a live process's folder was removed: %v", err)
	}
	live.Close()
	if _, err := os.Stat(live.Path); !os.IsNotExist(err) {
		t.Errorf("Close left %s", live.Path)
	}
}

func TestFilterHasNoFalseNegatives(t *testing.T) {
	f := newFilter(100_000, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	var in [][2]uint64
	for i := 0; i < 2_000; i++ {
		k := [2]uint64{rng.Uint64(), rng.Uint64()}
		in = append(in, k)
		f.add(k[0], k[1])
	}
	path := filepath.Join(t.TempDir(), "b")
	if err := f.save(path); err != nil {
		t.Fatal(err)
	}
	g, err := loadFilter(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range in {
		if !g.has(k[0], k[1]) {
			t.Fatalf("customer %x lost", k)
		}
	}
	fp := 0
	for i := 0; i < 10_000; i++ {
		if g.has(rng.Uint64(), rng.Uint64()) {
			fp++
		}
	}
	if fp > 1_000 {
		t.Errorf("%d false positives in 10,000: the filter filters nothing", fp)
	}
}

// TestEachStopsAtFirstError: every index runs once until an error, which
// is the one returned; the parallel phases rely on it.
func TestEachStopsAtFirstError(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	err := each(context.Background(), 1000, 4, nil, nil, func(w, i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return nil
	})
	if err != nil || len(seen) != 1000 {
		t.Fatalf("err %v, %d indexes run", err, len(seen))
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("index %d ran %d times", i, n)
		}
	}
	boom := errors.New("boom")
	err = each(context.Background(), 1000, 4, nil, nil, func(w, i int) error {
		if i == 10 {
			return boom
		}
		if i > 10 {
			return errStopped
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the first real error", err)
	}
}

// TestEachAdmitsByWeight: the items running at once never take more than
// the workers' shares, counting each by its weight; an admission that
// ignored weights would run a heavy item beside others.
func TestEachAdmitsByWeight(t *testing.T) {
	const workers = 4
	weights := []int{1, 1, 3, 1, 2, 4, 1, 1, 2, 2, 1, 3, 1, 1, 4, 1}
	var mu sync.Mutex
	running, most, together := 0, 0, 0
	err := each(context.Background(), 4*len(weights), workers, func(i int) int { return weights[i%len(weights)] }, nil, func(w, i int) error {
		mu.Lock()
		running += weights[i%len(weights)]
		most = max(most, running)
		if running > weights[i%len(weights)] {
			together++
		}
		mu.Unlock()
		time.Sleep(time.Millisecond) // so that items overlap
		mu.Lock()
		running -= weights[i%len(weights)]
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if most > workers {
		t.Fatalf("items of %d shares ran at once, over the %d workers' shares", most, workers)
	}
	if together == 0 {
		t.Fatal("no two items ran at once: the test proves nothing")
	}
}

// TestEachFreesIdleWorkersForAHeavyItem: an item that borrows every
// worker's share starts only once the other workers' buffers (kept for
// reuse between items) are freed; otherwise the shares it borrows are
// still taken and the budget is exceeded.
func TestEachFreesIdleWorkersForAHeavyItem(t *testing.T) {
	const workers = 4
	heavy := func(i int) bool { return i%10 == 9 }
	var mu sync.Mutex
	held := make([]bool, workers) // worker keeps buffers from an item
	used := make([]bool, workers)
	heavies := 0
	err := each(context.Background(), 40, workers, func(i int) int {
		if heavy(i) {
			return workers
		}
		return 1
	}, func(w int) {
		mu.Lock()
		held[w] = false
		mu.Unlock()
	}, func(w, i int) error {
		time.Sleep(time.Millisecond) // so that every worker takes items
		mu.Lock()
		defer mu.Unlock()
		if heavy(i) {
			heavies++
			for o, h := range held {
				if h && o != w {
					return fmt.Errorf("item %d started while worker %d still holds its buffers", i, o)
				}
			}
		}
		used[w] = true
		held[w] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if heavies != 4 || slices.Index(used, false) >= 0 {
		t.Fatalf("%d heavy items ran (want 4), workers used %v (want all): the test proves nothing", heavies, used)
	}
}

// TestCheckWindowNamesTheBudgetNeeded: a window the budget can cut into
// buckets passes; one that needs more bucket files than the budget can
// buffer fails as a usage error naming the smallest budget that passes,
// and that budget does pass while one step below it does not.
func TestCheckWindowNamesTheBudgetNeeded(t *testing.T) {
	for _, tc := range []struct {
		limit   int64
		workers int
		window  int64
		ok      bool
	}{
		{256 << 20, 2, 10_000_000, true},
		{256 << 20, 2, 10_000_000_000, false},
		{256 << 20, 1, 10_000_000_000, false},
		{12 << 30, 4, 8_800_000_000, true},
		{1 << 30, 4, 8_800_000_000, false},
	} {
		b := Budget{Limit: tc.limit, Workers: tc.workers}
		err := b.CheckWindow(tc.window)
		if tc.ok {
			if err != nil {
				t.Errorf("%s, %d workers, %d events: %v", FormatSize(tc.limit), tc.workers, tc.window, err)
			}
			continue
		}
		need := b.LimitFor(tc.window)
		if k, _ := errkind.Of(err); k != errkind.Usage || !strings.Contains(err.Error(), "raise --memory-limit to at least "+FormatSize(need)) {
			t.Errorf("%s, %d events: got %v, want a usage error naming %s", FormatSize(tc.limit), tc.window, err, FormatSize(need))
			continue
		}
		if e := (Budget{Limit: need, Workers: tc.workers}).CheckWindow(tc.window); e != nil {
			t.Errorf("the budget named, %s, fails too: %v", FormatSize(need), e)
		}
		if e := (Budget{Limit: need - 64<<20, Workers: tc.workers}).CheckWindow(tc.window); e == nil && need > MinLimit {
			t.Errorf("%s would do too: the budget named is not the smallest", FormatSize(need-64<<20))
		}
	}
}
