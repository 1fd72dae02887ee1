package spill

import (
	"debug/elf"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/icefill/icefill/internal/errkind"
)

// Counters other packages (metrics, bench) may read at any time.
var (
	// BytesWritten counts every spill byte written by this process.
	BytesWritten atomic.Int64
	// BytesOnDisk is the spill bytes currently on disk.
	BytesOnDisk atomic.Int64
	// Partitions counts partitions computed on the external path.
	Partitions atomic.Int64
	// Borrowed counts customer buckets too large for one worker's share,
	// computed with the shares of others.
	Borrowed atomic.Int64
)

// ParseSize reads a size such as 512MiB, 2GiB, 1.5G, 300M or 1048576
// (bytes). K/M/G/T are taken as powers of 1024, like Ki/Mi/Gi/Ti.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	u := strings.ToLower(t)
	mult := int64(1)
	for _, x := range []struct {
		suf  string
		mult int64
	}{{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
		{"tb", 1 << 40}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
		{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(u, x.suf) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, x.suf)), x.mult
			break
		}
	}
	v, err := strconv.ParseFloat(u, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit (B, KiB, MiB, GiB, TiB)", s)
	}
	return int64(v * float64(mult)), nil
}

// FormatSize prints n bytes in binary units.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// DefaultShare is the part of the container's (or machine's) memory the
// default budget takes: the rest is left to the page cache and neighbours.
const DefaultShare = 0.6

// DefaultLimit is the default memory budget: DefaultShare of the cgroup
// memory limit (v2 memory.max, v1 memory.limit_in_bytes) or, without one,
// of physical memory. source says which.
func DefaultLimit() (limit int64, source string) {
	total, src := systemMemory()
	if total <= 0 {
		return 4 << 30, "a fixed 4 GiB (no cgroup limit or physical memory found)"
	}
	return int64(float64(total) * DefaultShare), fmt.Sprintf("%.0f%% of %s (%s)", DefaultShare*100, FormatSize(total), src)
}

func systemMemory() (int64, string) {
	phys := physicalMemory()
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 || (phys > 0 && v >= phys) {
			continue // "max", or an unlimited v1 value
		}
		return v, "cgroup limit " + f
	}
	if phys > 0 {
		return phys, "physical memory"
	}
	return 0, ""
}

func physicalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// MinLimit is the smallest budget accepted: below it the executable's own
// pages and the runtime leave too little for the events.
const MinLimit = 256 << 20

// Budget is the memory budget of one process and how the engine sizes its
// work from it.
//
// The budget bounds the process's resident set (what a container's memory
// limit counts). Part of it is outside Go's heap and fixed: the
// executable's code and read-only data, mapped from its file (about 60 MiB
// resident, ExecutableResident bounds it), and the runtime's own stacks and
// metadata (runtimeMargin). Go's soft memory limit (GoLimit) gets the rest,
// and the engine plans for a live heap of about half of that (Heap): the
// collector needs the other half as headroom, or it runs without pause and
// its CPU limiter then lets the heap grow past the soft limit.
type Budget struct {
	Limit int64
	// Workers is how many buckets are computed at once (each within
	// its share of the budget); 0 means 1.
	Workers int
	// ForceBuckets, when positive, sends every partition to the external
	// path with that many buckets (tests and benchmarks only).
	ForceBuckets int
	// EventBytes, when positive, replaces BucketBytesPerEvent (tests: a
	// heavy customer without generating millions of events).
	EventBytes int64
}

// perEvent is what one event of a bucket takes.
func (b Budget) perEvent() int64 {
	if b.EventBytes > 0 {
		return b.EventBytes
	}
	return BucketBytesPerEvent
}

// Bytes the in-memory path takes per event of the days it keeps decoded
// (columns, event-id index, Parquet buffers, collector headroom), and the
// external path per event of the bucket it computes (records, the bucket's
// days, their index, the kernel's scratch and the bucket's output rows):
// measured with make bench, rounded up.
const (
	InMemoryBytesPerEvent = 300
	BucketBytesPerEvent   = 360
	// reserve is what the in-memory path needs besides the events:
	// Parquet reader and writer buffers, output rows.
	reserve = 96 << 20
	// runtimeMargin covers what Go's memory limit does not see: thread
	// stacks of the OS, the initialised data segment, page rounding.
	runtimeMargin = 8 << 20
	// heapShare is the live heap planned for, as a share of GoLimit.
	heapShare = 0.55
	// rowsWriterBytes is the Parquet writer of a partition's spilled rows
	// (page buffers of one column; no dictionaries) and the record of one
	// bucket's rows being written beyond the rows themselves.
	rowsWriterBytes = 8 << 20
	// bucketSkew is the room left for buckets larger than the mean: ids
	// and customers hash evenly, but a bucket's size varies with the
	// customers that land in it.
	bucketSkew = 1.5
	// minFrame and maxFrame bound the buffer of each open bucket file.
	minFrame, maxFrame = 4 << 10, 64 << 10
)

// ExecutableResident bounds the resident pages of this process's
// executable file (code, read-only and initialised data): RSS counts them,
// Go's memory limit does not. Read once from the ELF program headers.
var ExecutableResident = sync.OnceValue(func() int64 {
	const fallback = 96 << 20
	path, err := os.Executable()
	if err != nil {
		return fallback
	}
	f, err := elf.Open(path)
	if err != nil {
		return fallback
	}
	defer f.Close()
	var n int64
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			n += int64(p.Filesz)
		}
	}
	return n
})

// GoLimit is Go's soft memory limit under this budget: the budget less
// what the runtime cannot count.
func (b Budget) GoLimit() int64 {
	return max(b.Limit-ExecutableResident()-runtimeMargin, b.Limit/4)
}

// Heap is the live heap the engine plans for.
func (b Budget) Heap() int64 { return int64(float64(b.GoLimit()) * heapShare) }

// FitsInMemory reports whether keeping cacheDays days of dayRows events
// each decoded fits the budget.
func (b Budget) FitsInMemory(cacheDays int, dayRows int64) bool {
	if b.ForceBuckets > 0 {
		return false
	}
	return b.FitsDecoded(int64(cacheDays) * dayRows)
}

// FitsDecoded reports whether decoded days holding rows events in all fit
// the budget.
func (b Budget) FitsDecoded(rows int64) bool {
	if b.ForceBuckets > 0 {
		return false
	}
	return rows*InMemoryBytesPerEvent+reserve <= b.GoLimit()
}

// filterBytes is the largest buyer filter of a day (see newFilter).
func (b Budget) filterBytes() int64 { return b.Heap() / 32 }

// writersBytes is what the buffers of a bucket count's open files may
// take together.
func (b Budget) writersBytes() int64 { return b.Heap() / 8 }

// frame is the buffer size of each of nb open bucket files.
func (b Budget) frame(nb int) int {
	return int(max(minFrame, min(maxFrame, b.writersBytes()/int64(max(1, nb)))))
}

// share is the memory one worker's bucket may take: the heap less the
// fixed parts of the phases that compute buckets, split between workers.
// (Cutting a day into id buckets computes none: a source file read a row
// group at a time and the decoder's v1 user-id cache, about 40 MiB, take
// their place.)
func (b Budget) share() int64 {
	return (b.Heap() - rowsWriterBytes - b.filterBytes() - b.writersBytes()) / int64(max(1, b.Workers))
}

// bucketHeap is what one bucket computed alone may take: the heap less the
// rows writer (the buyer filter and the bucket files' buffers are gone by
// then).
func (b Budget) bucketHeap() int64 { return b.Heap() - rowsWriterBytes }

// limitForBucket is the smallest budget (in steps of 64 MiB) under which a
// bucket of events events is computed alone.
func (b Budget) limitForBucket(events int64) int64 {
	return b.smallest(func(c Budget) bool { return c.bucketHeap() >= events*c.perEvent() })
}

// smallest is the smallest limit from MinLimit up, in steps of 64 MiB, of
// a budget like b for which ok holds.
func (b Budget) smallest(ok func(Budget) bool) int64 {
	c := b
	for c.Limit = MinLimit; c.Limit < 1<<50 && !ok(c); c.Limit += 64 << 20 {
	}
	return c.Limit
}

// RowGroupRows is the row-group length for the output of a partition
// computed on the external path: a writer buffers a row group (about 100
// bytes a row once encoded) before it flushes it.
func (b Budget) RowGroupRows() int {
	return int(max(16<<10, min(1<<20, b.Heap()/8/100)))
}

// Buckets is how many buckets a window of windowRows events is cut into
// so that one bucket is computed within its worker's share.
func (b Budget) Buckets(windowRows int64) int {
	if b.ForceBuckets > 0 {
		return b.ForceBuckets
	}
	per := max(1, b.bucketEvents())
	return int(max(1, min((windowRows+per-1)/per, MaxBuckets)))
}

// bucketEvents is how many window events a bucket is planned for: a
// worker's share, with room for buckets larger than the average.
func (b Budget) bucketEvents() int64 {
	return int64(float64(b.share()) / (float64(b.perEvent()) * bucketSkew))
}

// MaxBuckets bounds the bucket count: each bucket is an open file while
// a day is cut.
const MaxBuckets = 1 << 16

// CheckWindow fails, before anything is computed, a window of windowRows
// events that this budget cannot cut into buckets small enough: too many
// bucket files for their buffers (at least minFrame each) or for the
// process's limit on open files. The error says which budget would do.
func (b Budget) CheckWindow(windowRows int64) error {
	nb := b.Buckets(windowRows)
	if b.ForceBuckets > 0 {
		return checkFiles(nb)
	}
	if !b.fits(windowRows) {
		return tooLarge("a window of %d events needs %d buckets of local files under --memory-limit %s, more than the budget can buffer or the limit on open files (%d) allows; raise --memory-limit to at least %s",
			windowRows, nb, FormatSize(b.Limit), openFiles(), FormatSize(b.LimitFor(windowRows)))
	}
	return nil
}

// LimitFor is the smallest budget (rounded up to 64 MiB) whose buckets
// for a window of windowRows events fit their buffers.
func (b Budget) LimitFor(windowRows int64) int64 {
	return b.smallest(func(c Budget) bool { return c.fits(windowRows) })
}

// fits reports whether a window of windowRows events can be cut into
// buckets of at most a worker's share, with room for their files' buffers
// and open files for them.
func (b Budget) fits(windowRows int64) bool {
	per := b.bucketEvents()
	if per < 1<<10 {
		return false
	}
	nb := (windowRows + per - 1) / per
	return nb <= MaxBuckets && nb*minFrame <= b.writersBytes() && filesFit(nb)
}

// filesFit reports whether nb bucket files (plus the process's other
// files) stay within the limit on open files.
func filesFit(nb int64) bool { return nb+filesBesides <= openFiles() }

// filesBesides is the open files the process needs besides bucket files.
const filesBesides = 256

// openFiles is the process's soft limit on open files (Go raises it to
// the hard limit at start).
func openFiles() int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		return math.MaxInt32
	}
	return int64(rl.Cur)
}

// checkFiles fails when nb bucket files (plus the process's other files)
// would pass the limit on open files.
func checkFiles(nb int) error {
	if nb > MaxBuckets {
		return tooLarge("the external path cannot cut a window into %d buckets (at most %d)", nb, MaxBuckets)
	}
	if !filesFit(int64(nb)) {
		return tooLarge("the external path needs %d bucket files open at once, more than the limit on open files (%d); raise it (ulimit -n %d) or --memory-limit",
			nb, openFiles(), nb+filesBesides)
	}
	return nil
}

// ErrTooLarge marks the errors of a partition this budget cannot compute
// (its window, or one customer in it): retrying does not help, a larger
// --memory-limit (or limit on open files) does.
var ErrTooLarge = errors.New("too large for the memory budget")

// tooLarge is a usage error (exit 2) that is ErrTooLarge.
func tooLarge(format string, args ...any) error {
	return errkind.UsageError(tooLargeError{fmt.Errorf(format, args...)})
}

type tooLargeError struct{ error }

func (e tooLargeError) Unwrap() error      { return e.error }
func (tooLargeError) Is(target error) bool { return target == ErrTooLarge }
