package snapshots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/icefill/icefill/internal/objstore"
)

// The gc fence (docs/commit-protocol.md §5.2). Before deleting anything, a
// clean-up commits a new snapshot (no data, an empty manifest list) and
// points the tag FenceRef at it; its summary carries the cut: unreferenced
// data files whose storage time is before it may be deleted. Adding a
// snapshot raises the table's sequence number, so every commit staged
// before the fence fails at the catalog; icefill's data commits also pin
// FenceRef explicitly (for catalogs or format-v1 tables without sequence
// numbers). A writer's next attempt reads the cut and, if its files are
// not newer, writes them again instead of committing files that may be
// gone. Times on both sides are storage times: object modification times
// read by listing, never a worker's clock.
const (
	// FenceRef is the tag holding the newest gc fence.
	FenceRef = "icefill-gc-fence"
	// SummaryGCCut is the fence's cut, Unix milliseconds of storage time.
	SummaryGCCut = "icefill.gc-cut"
)

// ErrFenced is returned when a clean-up's fence may have deleted the data
// files of a commit: they must be written again.
var ErrFenced = errors.New("a clean-up (gc) ran since the data files were written and may have deleted them")

// FenceCut is the cut of the table's current gc fence (zero time if none).
func FenceCut(tbl *table.Table) time.Time {
	snap := tbl.SnapshotByName(FenceRef)
	if snap == nil || snap.Summary == nil {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(snap.Summary.Properties[SummaryGCCut], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// fenced reports whether files whose oldest storage time is written may
// have been deleted by a clean-up whose fence is in tbl. A clean-up deletes
// only files listed strictly before its cut, and both times are read by
// listing the same storage, so "not after the cut" is exact whatever the
// storage's time resolution.
func fenced(tbl *table.Table, written time.Time) bool {
	cut := FenceCut(tbl)
	return !cut.IsZero() && !written.After(cut)
}

// RaiseFence commits a fence with cut (or the current fence's cut, if
// later: a fence never moves back), pinned to the current fence, retried
// on conflict. It returns the table as the fence left it.
func RaiseFence(ctx context.Context, cat catalog.Catalog, ident table.Identifier, cut time.Time, by string) (*table.Table, error) {
	var lastErr error
	for attempt := 1; attempt <= 8; attempt++ {
		if attempt > 1 {
			if err := sleepCtx(ctx, backoff(attempt, time.Second)); err != nil {
				return nil, err
			}
		}
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			return nil, fmt.Errorf("load table %s: %w", ident, err)
		}
		if prev := FenceCut(tbl); prev.After(cut) {
			cut = prev
		}
		reqs, updates, err := fenceCommit(ctx, tbl, cut, by)
		if err != nil {
			return nil, err
		}
		if _, _, err = cat.CommitTable(ctx, ident, reqs, updates); err == nil {
			return cat.LoadTable(ctx, ident)
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("raise the gc fence on %s: %w", ident, lastErr)
}

// fenceCommit builds the fence snapshot by hand: a snapshot with an empty
// manifest list references no data file, so the fence keeps nothing alive.
func fenceCommit(ctx context.Context, tbl *table.Table, cut time.Time, by string) ([]table.Requirement, []table.Update, error) {
	meta := tbl.Metadata()
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, nil, err
	}
	wfs, ok := fs.(icebergio.WriteFileIO)
	if !ok {
		return nil, nil, fmt.Errorf("the table's file system cannot write")
	}
	id := rand.Int64N(1<<62) + 1
	seq := meta.LastSequenceNumber() + 1
	var parent *int64
	if prev := tbl.SnapshotByName(FenceRef); prev != nil {
		p := prev.SnapshotID
		parent = &p
	}
	var buf bytes.Buffer
	var firstRowID int64
	if meta.Version() >= 3 {
		firstRowID = meta.NextRowID()
	}
	if err := iceberg.WriteManifestList(meta.Version(), &buf, id, parent, &seq, firstRowID, nil); err != nil {
		return nil, nil, fmt.Errorf("write the gc fence's manifest list: %w", err)
	}
	path := strings.TrimSuffix(tbl.Location(), "/") + fmt.Sprintf("/metadata/snap-%d-icefill-gc-fence-%s.avro", id, uuid.NewString()[:8])
	if err := wfs.WriteFile(path, buf.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("write the gc fence's manifest list: %w", err)
	}
	schemaID := meta.CurrentSchema().ID
	snap := &table.Snapshot{
		SnapshotID: id, ParentSnapshotID: parent, SequenceNumber: seq, TimestampMs: time.Now().UnixMilli(),
		ManifestList: path, SchemaID: &schemaID,
		Summary: &table.Summary{Operation: table.OpAppend, Properties: iceberg.Properties{
			SummaryOperation: "gc-fence", SummaryGCCut: strconv.FormatInt(cut.UnixMilli(), 10),
			"icefill.gc-by": by,
		}},
	}
	if meta.Version() >= 3 {
		zero := int64(0)
		snap.FirstRowID, snap.AddedRows = &firstRowID, &zero
	}
	reqs := []table.Requirement{table.AssertTableUUID(meta.TableUUID()), table.AssertRefSnapshotID(FenceRef, parent)}
	updates := []table.Update{table.NewAddSnapshotUpdate(snap), table.NewSetSnapshotRefUpdate(FenceRef, id, table.TagRef, 0, 0, 0)}
	return reqs, updates, nil
}

// StorageNow reads the storage's clock: it writes a tiny object under
// <table location>/_icefill/clock/ and reads its modification time back.
// Comparing that with other objects' times needs no trust in any clock of
// any worker.
func StorageNow(ctx context.Context, location string, s3 objstore.S3Options) (time.Time, error) {
	st, err := objstore.Open(ctx, strings.TrimSuffix(location, "/")+"/_icefill/clock", s3)
	if err != nil {
		return time.Time{}, err
	}
	name := uuid.NewString()
	w, err := st.Create(ctx, name)
	if err != nil {
		return time.Time{}, err
	}
	if _, err := w.Write([]byte("icefill clock probe\n")); err != nil {
		w.Close()
		return time.Time{}, err
	}
	if err := w.Close(); err != nil {
		return time.Time{}, err
	}
	defer st.Delete(context.WithoutCancel(ctx), name)
	objs, err := st.List(ctx, "")
	if err != nil {
		return time.Time{}, err
	}
	for _, o := range objs {
		if o.Path == name {
			return o.ModTime, nil
		}
	}
	return time.Time{}, fmt.Errorf("storage clock probe %s: written but not listed", st.URL(name))
}
