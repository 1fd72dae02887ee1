package snapshots

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/internal/errkind"
)

// BeginMainWrite makes a direct write to main deliberate and undoable: in
// one commit pinned to main's head it tags that head
// (pre-write-main-<time>-<snapshot>, kept like a pre-promotion tag) and
// records a "write-main" event in the history; `rollback --to <tag>`
// returns to it. On a table whose main has no snapshot yet only the event
// is recorded. The caller then writes; FinishMainWrite completes the event.
func BeginMainWrite(ctx context.Context, cat catalog.Catalog, ident table.Identifier, runID string, now time.Time) (Event, error) {
	ev := Event{Kind: "write-main", Method: "run", Branch: table.MainBranch, At: now.UnixMilli(), By: Who(), Note: "run " + runID}
	final := false // the attempt's error is not a conflict: do not retry
	err := retry(ctx, 10, time.Second, func(int) (bool, error) {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			final = true
			return true, err
		}
		history, err := ReadHistory(tbl.Properties())
		if err != nil {
			final = true
			return true, err
		}
		reqs := []table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())}
		var updates []table.Update
		ev.From, ev.Tag = 0, ""
		if main := tbl.CurrentSnapshot(); main != nil {
			id := main.SnapshotID
			ev.From = id
			ev.Tag = fmt.Sprintf("%s%s-%d", WriteMainTagPrefix, now.UTC().Format("20060102T150405Z"), id)
			reqs = append(reqs, table.AssertRefSnapshotID(table.MainBranch, &id))
			if _, ok := refOf(tbl, ev.Tag); !ok {
				updates = append(updates, table.NewSetSnapshotRefUpdate(ev.Tag, id, table.TagRef, TagRetention.Milliseconds(), 0, 0))
			}
		} else {
			reqs = append(reqs, table.AssertRefSnapshotID(table.MainBranch, nil))
		}
		enc, err := encodeJSON(append(history, ev))
		if err != nil {
			final = true
			return true, err
		}
		updates = append(updates, table.NewSetPropertiesUpdate(iceberg.Properties{HistoryProperty: enc}))
		_, _, err = cat.CommitTable(ctx, ident, reqs, updates)
		return err == nil, err
	})
	if err != nil && !final {
		return ev, errkind.UnavailableError(fmt.Errorf("record the write to main before it starts: %w; nothing was written", err))
	}
	return ev, err
}

// FinishMainWrite records main's head after the write in the event
// BeginMainWrite recorded (best effort: the tag and the event already say
// where main was).
func FinishMainWrite(ctx context.Context, cat catalog.Catalog, ident table.Identifier, ev Event) {
	retry(ctx, 5, time.Second, func(int) (bool, error) {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil || tbl.CurrentSnapshot() == nil {
			return true, err
		}
		history, err := ReadHistory(tbl.Properties())
		if err != nil {
			return true, err
		}
		found := false
		for i := len(history) - 1; i >= 0; i-- {
			if h := history[i]; h.Kind == ev.Kind && h.At == ev.At && h.By == ev.By && h.From == ev.From {
				history[i].To, found = tbl.CurrentSnapshot().SnapshotID, true
				break
			}
		}
		if !found {
			return true, nil
		}
		enc, err := encodeJSON(history)
		if err != nil {
			return true, err
		}
		id := tbl.CurrentSnapshot().SnapshotID
		_, _, err = cat.CommitTable(ctx, ident, []table.Requirement{table.AssertRefSnapshotID(table.MainBranch, &id)},
			[]table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{HistoryProperty: enc})})
		return err == nil, err
	})
}
