package snapshots

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

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
}

// CollectGarbage finds data files under the table's data/ folder that no
// snapshot of the table references (in any ref's history or any snapshot
// still in the metadata) and deletes those older than minAge. The age
// threshold protects files another process has written but not yet
// committed; a file referenced by any snapshot is never touched.
func CollectGarbage(ctx context.Context, tbl *table.Table, s3 objstore.S3Options, minAge time.Duration, dryRun bool, now time.Time) (*GCResult, error) {
	loc := strings.TrimSuffix(tbl.Location(), "/")
	st, err := objstore.Open(ctx, loc+"/data", s3)
	if err != nil {
		return nil, fmt.Errorf("open table location %s: %w", loc, err)
	}
	referenced, err := referencedFiles(ctx, tbl)
	if err != nil {
		return nil, err
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return &GCResult{Referenced: len(referenced)}, nil
		}
		return nil, fmt.Errorf("list data files of %s: %w", loc, err)
	}
	res := &GCResult{Scanned: len(objs), Referenced: len(referenced)}
	for _, o := range objs {
		full := loc + "/data/" + o.Path
		if referenced[normalizePath(full)] {
			continue
		}
		if now.Sub(o.ModTime) < minAge {
			res.Young++
			continue
		}
		res.Orphans = append(res.Orphans, Orphan{Object: o, URL: full})
	}
	if dryRun {
		return res, nil
	}
	for _, o := range res.Orphans {
		if err := st.Delete(ctx, o.Path); err != nil {
			return res, fmt.Errorf("delete orphan %s: %w", o.URL, err)
		}
		res.Deleted++
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
