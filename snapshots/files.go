package snapshots

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/internal/objstore"
)

// DataFiles checks data files of a table against storage: that each exists
// with the size its metadata records. Folders are listed (not each file
// stat'ed) so that the times read are the same listing times a clean-up
// compares with its cut.
type DataFiles struct {
	store objstore.Store // rooted at <location>/data
	data  string         // normalized <location>/data/
	// listed caches one listing per folder.
	listed map[string]map[string]objstore.Object
}

// NewDataFiles opens the data folder of the table at location.
func NewDataFiles(ctx context.Context, location string, s3 objstore.S3Options) (*DataFiles, error) {
	loc := strings.TrimSuffix(location, "/")
	st, err := objstore.Open(ctx, loc+"/data", s3)
	if err != nil {
		return nil, fmt.Errorf("open table location %s: %w", loc, err)
	}
	return &DataFiles{store: st, data: normalizePath(loc) + "/data/", listed: map[string]map[string]objstore.Object{}}, nil
}

// FileProblem is a data file that is not on storage as its metadata says.
type FileProblem struct {
	Path    string
	Problem string
	// Missing: not on storage at all (deleted, never written).
	Missing bool
}

func (p FileProblem) String() string { return p.Path + ": " + p.Problem }

// Check looks up every file on storage (fresh listings, not cached ones)
// and returns what is wrong with them and the oldest storage time among
// them. An error is a storage failure, not a finding.
func (d *DataFiles) Check(ctx context.Context, files []iceberg.DataFile) (problems []FileProblem, oldest time.Time, err error) {
	clear(d.listed)
	for _, f := range files {
		full := normalizePath(f.FilePath())
		rel, ok := strings.CutPrefix(full, d.data)
		if !ok {
			problems = append(problems, FileProblem{Path: f.FilePath(), Problem: "outside the table's data folder; not checked"})
			continue
		}
		dir := path.Dir(rel)
		objs, ok := d.listed[dir]
		if !ok {
			list, err := d.store.List(ctx, dir)
			if err != nil && !errors.Is(err, objstore.ErrNotExist) {
				return nil, time.Time{}, fmt.Errorf("list %s: %w", d.store.URL(dir), err)
			}
			objs = map[string]objstore.Object{}
			for _, o := range list {
				objs[o.Path] = o
			}
			d.listed[dir] = objs
		}
		o, ok := objs[rel]
		switch {
		case !ok:
			problems = append(problems, FileProblem{Path: f.FilePath(), Problem: "missing from storage", Missing: true})
		case o.Size != f.FileSizeBytes():
			problems = append(problems, FileProblem{Path: f.FilePath(), Problem: fmt.Sprintf("%d bytes on storage, %d recorded", o.Size, f.FileSizeBytes())})
		case oldest.IsZero() || o.ModTime.Before(oldest):
			oldest = o.ModTime
		}
	}
	return problems, oldest, nil
}

// RecordCount sums the files' record counts.
func RecordCount(files []iceberg.DataFile) int64 {
	var n int64
	for _, f := range files {
		n += f.Count()
	}
	return n
}

// VerifyCheckpoints checks, for each of days that branch's state has a
// checkpoint for, that the branch head holds data files for it whose
// record counts add up to the checkpoint's rows and that each file is on
// storage with its recorded size. It returns what is wrong, by day.
func VerifyCheckpoints(ctx context.Context, tbl *table.Table, branch string, state *State, days []string, s3 objstore.S3Options) (map[string]string, error) {
	head := tbl.SnapshotByName(branch)
	if head == nil || len(state.Checkpoints) == 0 {
		return nil, nil
	}
	byDay, err := FilesByPartition(ctx, tbl, head.SnapshotID)
	if err != nil {
		return nil, err
	}
	files := map[string][]iceberg.DataFile{}
	for d, fs := range byDay {
		files[d.String()] = fs
	}
	df, err := NewDataFiles(ctx, tbl.Location(), s3)
	if err != nil {
		return nil, err
	}
	bad := map[string]string{}
	for _, day := range days {
		cp, ok := state.Checkpoints[day]
		if !ok {
			continue
		}
		if n := RecordCount(files[day]); n != cp.OutputRows {
			bad[day] = fmt.Sprintf("the branch holds %d rows in %d files, the checkpoint says %d", n, len(files[day]), cp.OutputRows)
			continue
		}
		problems, _, err := df.Check(ctx, files[day])
		if err != nil {
			return nil, err
		}
		if len(problems) > 0 {
			bad[day] = fmt.Sprintf("%d of %d data files are not as committed (%s)", len(problems), len(files[day]), problems[0])
		}
	}
	return bad, nil
}
