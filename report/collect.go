package report

import (
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

// Page is everything the report shows, as read from the catalog.
type Page struct {
	Table   string
	Catalog string
	Branch  string
	// Head is the branch's snapshot (0: no such branch).
	Head int64
	// Base is the ref the branch is published onto (main) and its snapshot.
	Base     string
	BaseHead int64
	// Generated is when the page was made.
	Generated time.Time

	State  *snapshots.State
	Status *rewrite.Status
	// Validation is the last validation of the branch, pass or fail (nil:
	// none recorded); Certificate the recorded pass promote relies on.
	Validation  *Validation
	Certificate *snapshots.Validation
	History     []snapshots.Event
	Tags        []Tag
}

// Tag is a tag of the table.
type Tag struct {
	Name     string
	Snapshot int64
	// At is the tagged snapshot's time (zero if expired).
	At time.Time
}

// Collect reads the page's content from a loaded table.
func Collect(tbl *table.Table, catalog, branch, base string, now time.Time) (*Page, error) {
	p := &Page{Table: strings.Join(tbl.Identifier(), "."), Catalog: catalog, Branch: branch, Base: base, Generated: now.UTC()}
	if s := tbl.SnapshotByName(branch); s != nil {
		p.Head = s.SnapshotID
	}
	if s := tbl.SnapshotByName(base); s != nil {
		p.BaseHead = s.SnapshotID
	}
	props := tbl.Properties()
	var err error
	// The state counts only if it describes the branch as it is now (a
	// branch dropped and made again starts from nothing), as for status.
	if p.State, err = snapshots.LoadState(tbl, branch); err != nil {
		return nil, err
	}
	if p.Status, err = rewrite.BranchStatus(tbl, branch); err != nil {
		return nil, err
	}
	var v Validation
	ok, err := snapshots.ReadValidationReport(props, branch, &v)
	if err != nil {
		return nil, err
	}
	if ok {
		p.Validation = &v
	}
	if p.Certificate, err = snapshots.ReadValidation(props, branch); err != nil {
		return nil, err
	}
	if p.History, err = snapshots.ReadHistory(props); err != nil {
		return nil, err
	}
	for name, ref := range tbl.Metadata().Refs() {
		if ref.SnapshotRefType != table.TagRef {
			continue
		}
		t := Tag{Name: name, Snapshot: ref.SnapshotID}
		if s := tbl.Metadata().SnapshotByID(ref.SnapshotID); s != nil {
			t.At = time.UnixMilli(s.TimestampMs).UTC()
		}
		p.Tags = append(p.Tags, t)
	}
	slices.SortFunc(p.Tags, func(a, b Tag) int { return strings.Compare(a.Name, b.Name) })
	return p, nil
}
