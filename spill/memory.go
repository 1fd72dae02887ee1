package spill

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Counters other packages (metrics, bench) may read at any time.
var (
	// BytesWritten counts every spill byte written by this process.
	BytesWritten atomic.Int64
	// BytesOnDisk is the spill bytes currently on disk.
	BytesOnDisk atomic.Int64
	// Partitions counts partitions computed on the external path.
	Partitions atomic.Int64
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

// MinLimit is the smallest budget accepted.
const MinLimit = 128 << 20

// Budget is the memory budget of one process and how the engine sizes its
// work from it.
type Budget struct {
	Limit int64
	// Workers is how many buckets are computed at once (each within
	// its share of the budget); 0 means 1.
	Workers int
	// ForceBuckets, when positive, sends every partition to the external
	// path with that many buckets (tests and benchmarks only).
	ForceBuckets int
}

// Bytes the in-memory path takes per event of the days it keeps decoded
// (columns, event-id index, Parquet buffers, collector headroom), and the
// external path per event of the bucket it computes (records, the bucket's
// days, their index): measured with make bench, rounded up.
const (
	InMemoryBytesPerEvent = 300
	BucketBytesPerEvent   = 360
	// reserve is what the process needs besides the events: runtime,
	// Parquet reader and writer buffers, output rows.
	reserve = 96 << 20
)

// FitsInMemory reports whether keeping cacheDays days of dayRows events
// each decoded fits the budget.
func (b Budget) FitsInMemory(cacheDays int, dayRows int64) bool {
	if b.ForceBuckets > 0 {
		return false
	}
	return int64(cacheDays)*dayRows*InMemoryBytesPerEvent+reserve <= b.Limit
}

// Buckets is how many buckets a window of windowRows events is cut into
// so that one bucket is computed within the budget.
func (b Budget) Buckets(windowRows int64) int {
	if b.ForceBuckets > 0 {
		return b.ForceBuckets
	}
	usable := max(b.Limit-reserve, b.Limit/4) / int64(max(1, b.Workers))
	k := (windowRows*BucketBytesPerEvent + usable/2 - 1) / (usable / 2)
	return int(max(1, min(k, 1<<16)))
}
