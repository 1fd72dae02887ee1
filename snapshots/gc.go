package snapshots

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/internal/objstore"
)

// Orphan is a data file under the table location that no snapshot references.
type Orphan struct {
	objstore.Object
	URL string
}

// GCResult says what a clean-up found and did.
type GCResult struct {
	Scanned    int
	Referenced int
	Orphans    []Orphan
	// Young are unreferenced files newer than the age threshold: possibly
	// being written by a running process right now, so left alone.
	Young   int
	Deleted int
	// Cut is the fence's cut: unreferenced files older than it (storage
	// time) were deleted; StorageNow is the storage clock it came from.
	Cut, StorageNow time.Time
}

// GCOptions configure a clean-up.
type GCOptions struct {
	S3 objstore.S3Options
	// MinAge spares unreferenced files younger than this (by storage time).
	MinAge time.Duration
	// DryRun lists what would be deleted; it commits no fence and deletes
	// nothing.
	DryRun bool
	// By names who ran it, in the fence's summary.
	By string
}

// CollectGarbage finds data files under the table's data/ folder that no
// snapshot of the table references (in any ref's history or any snapshot
// still in the metadata) and deletes those older than opts.MinAge. Ages
// are storage times: the cut is the storage's own clock (StorageNow) minus
// MinAge, compared with the files' listed modification times. Before
// deleting, it commits a gc fence (RaiseFence) with that cut and reads the
// references after it: a writer that has not committed its files by then
// can no longer commit them without first seeing the cut, so nothing a
// live writer will commit is ever deleted, whatever its pauses.
func CollectGarbage(ctx context.Context, cat catalog.Catalog, ident table.Identifier, opts GCOptions) (*GCResult, error) {
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", ident, err)
	}
	loc := strings.TrimSuffix(tbl.Location(), "/")
	st, err := objstore.Open(ctx, loc+"/data", opts.S3)
	if err != nil {
		return nil, fmt.Errorf("open table location %s: %w", loc, err)
	}
	now, err := StorageNow(ctx, loc, opts.S3)
	if err != nil {
		if !opts.DryRun {
			return nil, fmt.Errorf("read the storage clock of %s: %w", loc, err)
		}
		now = time.Now() // a dry run may be read-only: report by the local clock
	}
	// Whole milliseconds, as the fence records it: a writer compares its
	// files with exactly the cut gc deletes by.
	cut := time.UnixMilli(now.Add(-opts.MinAge).UnixMilli())
	res, err := findOrphans(ctx, tbl, st, cut)
	if err != nil {
		return nil, err
	}
	res.StorageNow = now
	if opts.DryRun || len(res.Orphans) == 0 {
		return res, nil
	}
	// Something to delete: fence first, then decide again from the table
	// as the fence left it (a writer may have committed some meanwhile).
	if tbl, err = RaiseFence(ctx, cat, ident, cut, opts.By); err != nil {
		return nil, err
	}
	if res, err = findOrphans(ctx, tbl, st, cut); err != nil {
		return nil, err
	}
	res.StorageNow = now
	for _, o := range res.Orphans {
		if err := st.Delete(ctx, o.Path); err != nil {
			return res, fmt.Errorf("delete orphan %s: %w", o.URL, err)
		}
		res.Deleted++
	}
	return res, nil
}

// findOrphans lists the unreferenced data files older than cut.
func findOrphans(ctx context.Context, tbl *table.Table, st objstore.Store, cut time.Time) (*GCResult, error) {
	loc := strings.TrimSuffix(tbl.Location(), "/")
	referenced, err := referencedFiles(ctx, tbl)
	if err != nil {
		return nil, err
	}
	res := &GCResult{Referenced: len(referenced), Cut: cut}
	objs, err := st.List(ctx, "")
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return res, nil
		}
		return nil, fmt.Errorf("list data files of %s: %w", loc, err)
	}
	res.Scanned = len(objs)
	for _, o := range objs {
		full := loc + "/data/" + o.Path
		if referenced[normalizePath(full)] {
			continue
		}
		if !o.ModTime.Before(cut) {
			res.Young++
			continue
		}
		res.Orphans = append(res.Orphans, Orphan{Object: o, URL: full})
	}
	return res, nil
}

// referencedFiles reads every manifest of every snapshot in the metadata,
// each manifest once, including entries marked deleted: an older snapshot
// still needs those files.
func referencedFiles(ctx context.Context, tbl *table.Table) (map[string]bool, error) {
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	seenManifest := map[string]bool{}
	files := map[string]bool{}
	for _, snap := range tbl.Metadata().Snapshots() {
		manifests, err := snap.Manifests(fs)
		if err != nil {
			return nil, fmt.Errorf("read manifest list of snapshot %d: %w", snap.SnapshotID, err)
		}
		for _, m := range manifests {
			if seenManifest[m.FilePath()] {
				continue
			}
			seenManifest[m.FilePath()] = true
			for e, err := range m.Entries(fs, false) {
				if err != nil {
					return nil, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
				}
				files[normalizePath(e.DataFile().FilePath())] = true
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// normalizePath makes file:///x, file:/x and /x compare equal.
func normalizePath(p string) string {
	if strings.HasPrefix(p, "file:") {
		if u, err := url.Parse(p); err == nil {
			return u.Path
		}
	}
	return p
}
