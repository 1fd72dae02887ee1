package snapshots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
)

// Errors a guard raises. The command maps them to "refused" (exit 4).
var (
	ErrNotValidated = errors.New("the branch head has no passing validation")
	ErrUncovered    = errors.New("main changed partitions the branch has not recomputed")
	ErrRisk         = errors.New("rollback could become impossible")
	ErrMainMoved    = errors.New("main moved while promoting")
	ErrNothingToDo  = errors.New("nothing to do")
	ErrLaterChanges = errors.New("later commits changed promoted partitions")
	ErrNoSuchRef    = errors.New("no such branch, tag or snapshot")
	// ErrNotMainLineage: a snapshot main has never been.
	ErrNotMainLineage = errors.New("not a snapshot main has been")
)

// TagRetention is how long pre-promotion tags are kept: explicitly set on
// the tag, so a table-wide ref expiry cannot remove it.
const TagRetention = 100 * 365 * 24 * time.Hour

// PromoteOptions configure a promotion.
type PromoteOptions struct {
	Branch         string
	SkipValidation bool
	AcceptRisk     bool
	// TagRetention overrides the tag's max age (default TagRetention).
	TagRetention time.Duration
	By           string
	Now          time.Time
	Log          *slog.Logger
	// BeforePublish, when set, runs just before the publishing commit
	// (tests use it to commit to main at the worst moment).
	BeforePublish func()
}

// PromoteResult says what a promotion did.
type PromoteResult struct {
	Event      Event
	Risks      []string
	Uncovered  []string
	Validation *Validation
}

// UncoveredError lists the days main changed since the fork that the
// branch has not recomputed after the change.
type UncoveredError struct {
	Branch string
	Days   []string
}

func (e *UncoveredError) Error() string {
	return fmt.Sprintf("%v: main changed %d partition(s) since branch %s was made that the backfill has not recomputed since (%s); run `icefill run --catch-up --branch %s …` to recompute exactly those days, validate again, then promote",
		ErrUncovered, len(e.Days), e.Branch, strings.Join(trimList(e.Days, 12), ", "), e.Branch)
}

func (e *UncoveredError) Unwrap() error { return ErrUncovered }

func trimList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string{}, s[:n]...), fmt.Sprintf("… %d more", len(s)-n))
}

// RetentionRisks says what could make a rollback to a tag with the given
// max age impossible, judged from the table's properties.
func RetentionRisks(props iceberg.Properties, tagMaxAge time.Duration) []string {
	var risks []string
	effective := tagMaxAge
	if effective <= 0 {
		if v, ok := props["history.expire.max-ref-age-ms"]; ok {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				effective = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if effective > 0 && effective < 365*24*time.Hour {
		risks = append(risks, fmt.Sprintf("the pre-promotion tag would expire after %s (snapshot expiry removes expired tags and then the snapshot rollback needs)", effective))
	}
	if v := props["gc.enabled"]; v == "true" || v == "" {
		if ms, err := strconv.ParseInt(props["history.expire.max-snapshot-age-ms"], 10, 64); err == nil && ms < int64(time.Hour/time.Millisecond) {
			risks = append(risks, fmt.Sprintf("history.expire.max-snapshot-age-ms=%d: snapshots between promotion and rollback may be expired within the hour (the tag still keeps the pre-promotion snapshot, but history will be thin)", ms))
		}
	}
	return risks
}

// Promote publishes branch onto main in three steps: guards (the branch,
// its validation record, the retention risks), target (the snapshot main
// will point at: the branch head when it descends from main, else a
// rebuild of the branch's partitions on top of main's head), then the gate
// and the publishing commit. The gate compares main's head with the target
// file by file: every partition whose files differ must be covered by the
// branch's validation certificate with exactly main's current files as
// base and the target's as candidate. The publishing commit tags main's
// head, moves main and records exactly the partitions it changed, all
// pinned to the snapshots read: nothing that landed on main is lost.
func Promote(ctx context.Context, cat catalog.Catalog, ident table.Identifier, opts PromoteOptions) (*PromoteResult, error) {
	res := &PromoteResult{}
	err := promote(ctx, cat, ident, opts, res)
	return res, classify(err)
}

// promotion is what the steps of Promote hand on.
type promotion struct {
	tbl        *table.Table
	head, main *table.Snapshot // main is nil on a table whose main has no snapshot
	val        *Validation
	state      *State
	method     string
	target     int64
	changes    []PartitionChange
}

func promote(ctx context.Context, cat catalog.Catalog, ident table.Identifier, opts PromoteOptions, res *PromoteResult) error {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.By == "" {
		opts.By = Who()
	}
	if opts.TagRetention == 0 {
		opts.TagRetention = TagRetention
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if err := CheckPublishBranch(opts.Branch); err != nil {
		return err
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return errkind.UnavailableError(fmt.Errorf("load table %s: %w", ident, err))
	}
	p, err := promoteGuards(tbl, opts, res)
	if err != nil {
		return err
	}
	if err := promoteTarget(ctx, cat, p, opts, res); err != nil {
		return err
	}
	if opts.SkipValidation {
		opts.Log.Warn("PROMOTING WITHOUT VALIDATION (--skip-validation): nothing proves these partitions are right",
			"branch", opts.Branch, "partitions", len(p.changes))
	} else if err := checkCertificate(opts.Branch, p.val, p.changes); err != nil {
		dropScratch(ctx, cat, p, opts.Branch)
		return err
	}
	return publishPromotion(ctx, cat, p, opts, res)
}

// promoteGuards checks what can be judged before building anything.
func promoteGuards(tbl *table.Table, opts PromoteOptions, res *PromoteResult) (*promotion, error) {
	p := &promotion{tbl: tbl, head: tbl.SnapshotByName(opts.Branch), main: tbl.CurrentSnapshot()}
	if p.head == nil {
		return nil, fmt.Errorf("%w: branch %q does not exist on %s", ErrNoSuchRef, opts.Branch, strings.Join(tbl.Identifier(), "."))
	}
	props := tbl.Properties()
	var err error
	if p.val, err = ReadValidation(props, opts.Branch); err != nil {
		return nil, err
	}
	if p.val == nil && !opts.SkipValidation {
		return nil, fmt.Errorf("%w: branch %s (snapshot %d) was never validated; run `icefill validate --base main --candidate %s` first",
			ErrNotValidated, opts.Branch, p.head.SnapshotID, opts.Branch)
	}
	if p.val == nil {
		p.val = &Validation{}
	}
	res.Validation = p.val
	res.Risks = RetentionRisks(props, opts.TagRetention)
	if len(res.Risks) > 0 && !opts.AcceptRisk {
		return nil, fmt.Errorf("%w: %s; fix the retention or pass --accept-risk", ErrRisk, strings.Join(res.Risks, "; "))
	}
	if p.state, err = LoadState(tbl, opts.Branch); err != nil {
		return nil, err
	}
	if p.main != nil && p.main.SnapshotID == p.head.SnapshotID {
		return nil, fmt.Errorf("%w: main is already at branch %s's head (snapshot %d)", ErrNothingToDo, opts.Branch, p.head.SnapshotID)
	}
	return p, nil
}

// promoteTarget builds the snapshot main will point at and lists, file set
// by file set, what moving main there changes.
func promoteTarget(ctx context.Context, cat catalog.Catalog, p *promotion, opts PromoteOptions, res *PromoteResult) error {
	var mainID int64
	if p.main != nil {
		mainID = p.main.SnapshotID
	}
	mainFiles, err := SnapshotFiles(ctx, p.tbl, mainID)
	if err != nil {
		return errkind.UnavailableError(err)
	}
	p.method, p.target = "fast-forward", p.head.SnapshotID
	if p.main != nil && !builtOn(p.tbl, opts.Branch, p.head, p.main) {
		p.method = "rebase"
		if err := rebase(ctx, cat, p, opts, mainFiles, res); err != nil {
			return err
		}
	}
	targetFiles, err := SnapshotFiles(ctx, p.tbl, p.target)
	if err != nil {
		return errkind.UnavailableError(err)
	}
	p.changes = diffChanges(mainFiles, targetFiles)
	if len(p.changes) == 0 {
		dropScratch(ctx, cat, p, opts.Branch)
		return fmt.Errorf("%w: branch %s holds exactly main's files in every partition", ErrNothingToDo, opts.Branch)
	}
	return nil
}

// publishPromotion is the one commit that publishes: tag main's head, move
// main to the target, record the event, pinned to main and the branch.
func publishPromotion(ctx context.Context, cat catalog.Catalog, p *promotion, opts PromoteOptions, res *PromoteResult) error {
	tbl, ident := p.tbl, p.tbl.Identifier()
	ev := Event{Kind: "promote", Method: p.method, Branch: opts.Branch, Validation: p.val.summary(), Skipped: opts.SkipValidation,
		At: opts.Now.UnixMilli(), By: opts.By, To: p.target, Partitions: changedDayList(p.changes), Changes: p.changes}
	if opts.SkipValidation && p.val.Candidate == "" {
		ev.Validation = nil
	}
	reqs := []table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())}
	var updates []table.Update
	if p.main != nil {
		id := p.main.SnapshotID
		ev.From = id
		ev.Tag = fmt.Sprintf("%s%s-%s-%d", PromoteTagPrefix, opts.Branch, opts.Now.UTC().Format("20060102T150405Z"), id)
		reqs = append(reqs, table.AssertRefSnapshotID(table.MainBranch, &id))
		if existing, ok := refOf(tbl, ev.Tag); !ok {
			reqs = append(reqs, table.AssertRefSnapshotID(ev.Tag, nil))
			updates = append(updates, table.NewSetSnapshotRefUpdate(ev.Tag, id, table.TagRef, opts.TagRetention.Milliseconds(), 0, 0))
		} else if existing.SnapshotID != id {
			return errkind.Refusedf("tag %s exists and points elsewhere; remove it or retry", ev.Tag)
		}
	} else {
		reqs = append(reqs, table.AssertRefSnapshotID(table.MainBranch, nil))
	}
	history, err := ReadHistory(tbl.Properties())
	if err != nil {
		return err
	}
	encHistory, err := encodeJSON(append(history, ev))
	if err != nil {
		return err
	}
	branchHead := p.head.SnapshotID
	reqs = append(reqs, table.AssertRefSnapshotID(opts.Branch, &branchHead))
	newProps := iceberg.Properties{HistoryProperty: encHistory, baseProperty(opts.Branch): strconv.FormatInt(p.target, 10)}
	if p.method == "rebase" {
		// The branch moves to the rebased snapshot, which holds what its
		// checkpoints describe: bind the state to it (LoadState).
		rebound := p.state.Clone()
		rebound.Head = p.target
		ch, err := encodeState(tbl.Properties(), opts.Branch, rebound, "")
		if err != nil {
			return err
		}
		maps.Copy(newProps, ch.Set)
		if len(ch.Remove) > 0 {
			updates = append(updates, table.NewRemovePropertiesUpdate(ch.Remove))
		}
	}
	updates = append(updates,
		table.NewSetSnapshotRefUpdate(table.MainBranch, p.target, table.BranchRef, 0, 0, 0),
		table.NewSetSnapshotRefUpdate(opts.Branch, p.target, table.BranchRef, 0, 0, KeepSnapshots),
		table.NewSetPropertiesUpdate(newProps))
	if p.method == "rebase" {
		updates = append(updates, table.NewRemoveSnapshotRefUpdate(rebaseRef(opts.Branch)))
	}
	if opts.BeforePublish != nil {
		opts.BeforePublish()
	}
	if _, _, err := cat.CommitTable(ctx, ident, reqs, updates); err != nil {
		// Read the table back: did it land anyway (answer lost)? main at
		// target with our tag. If main is where it was, the catalog failed
		// (retry later); only if it moved is this a conflict.
		t2, lerr := cat.LoadTable(ctx, ident)
		if lerr != nil {
			return errkind.UnavailableError(fmt.Errorf("publish %s: %w; the outcome is unknown (reading the table back failed: %v): run `icefill history` when the catalog answers again", opts.Branch, err, lerr))
		}
		cur := t2.CurrentSnapshot()
		if cur != nil && cur.SnapshotID == p.target && (p.main == nil || t2.SnapshotByName(ev.Tag) != nil) {
			res.Event = ev
			return nil
		}
		if sameSnapshot(cur, p.main) {
			return errkind.UnavailableError(fmt.Errorf("publish %s: %w; nothing was published: main and %s are as they were; run promote again", opts.Branch, err, opts.Branch))
		}
		return fmt.Errorf("%w (%v); nothing was published: main and %s are as they were; run promote again", ErrMainMoved, err, opts.Branch)
	}
	res.Event = ev
	return nil
}

// sameSnapshot reports whether two (possibly nil) snapshots are the same.
func sameSnapshot(a, b *table.Snapshot) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.SnapshotID == b.SnapshotID
}

// rebase builds, on a scratch branch at main's head, one snapshot that swaps
// the backfilled partitions' files for the branch's, and makes it p's
// target. It refuses when main changed partitions after the branch last
// recomputed them.
func rebase(ctx context.Context, cat catalog.Catalog, p *promotion, opts PromoteOptions, mainFiles Files, res *PromoteResult) error {
	uncovered, err := UncoveredDays(ctx, p.tbl, opts.Branch, p.state)
	if err != nil {
		return err
	}
	if len(uncovered) > 0 {
		res.Uncovered = uncovered
		return &UncoveredError{Branch: opts.Branch, Days: uncovered}
	}
	branchFiles, err := FilesByPartition(ctx, p.tbl, p.head.SnapshotID)
	if err != nil {
		return errkind.UnavailableError(err)
	}
	var days []features.Date
	for _, d := range p.state.Done() {
		day, err := features.ParseDate(d)
		if err != nil {
			return fmt.Errorf("bad partition day %q in the state of branch %s", d, opts.Branch)
		}
		days = append(days, day)
	}
	// The scratch branch starts at main's head; a stale one from an
	// interrupted promotion is simply moved.
	scratch := rebaseRef(opts.Branch)
	mainID := p.main.SnapshotID
	if _, _, err := cat.CommitTable(ctx, p.tbl.Identifier(),
		[]table.Requirement{table.AssertTableUUID(p.tbl.Metadata().TableUUID()), table.AssertRefSnapshotID(table.MainBranch, &mainID)},
		[]table.Update{table.NewSetSnapshotRefUpdate(scratch, mainID, table.BranchRef, 0, 0, 0)}); err != nil {
		return fmt.Errorf("%w (%v); run promote again", ErrMainMoved, err)
	}
	t2, err := cat.LoadTable(ctx, p.tbl.Identifier())
	if err != nil {
		return errkind.UnavailableError(err)
	}
	summary := iceberg.Properties{SummaryOperation: "promote-rebase", SummaryBranch: opts.Branch,
		"icefill.branch-snapshot": strconv.FormatInt(p.head.SnapshotID, 10), SummaryDone: strconv.Itoa(len(p.state.Checkpoints))}
	t3, err := swapPartitions(ctx, cat, t2, scratch, days, mainFiles, branchFiles, summary, nil)
	if err != nil {
		return errkind.UnavailableError(fmt.Errorf("rebase of %s onto main: %w; run promote again", opts.Branch, err))
	}
	p.tbl, p.target = t3, t3.SnapshotByName(scratch).SnapshotID
	return nil
}

// dropScratch removes the scratch ref of a promotion that will not publish
// (best effort: the next promotion moves a stale one anyway).
func dropScratch(ctx context.Context, cat catalog.Catalog, p *promotion, branch string) {
	if p.method != "rebase" {
		return
	}
	cat.CommitTable(ctx, p.tbl.Identifier(), []table.Requirement{table.AssertTableUUID(p.tbl.Metadata().TableUUID())},
		[]table.Update{table.NewRemoveSnapshotRefUpdate(rebaseRef(branch))})
}

// swapPartitions commits on ref, pinned at its head in tbl, one snapshot in
// which each of days holds exactly src's files of that day instead of
// cur's (cur must be ref's files), with props set in the same commit.
// Promote's rebase (on a scratch ref at main's head) and rollback's restore
// (on main) are both this one commit.
func swapPartitions(ctx context.Context, cat catalog.Catalog, tbl *table.Table, ref string, days []features.Date, cur, src Files,
	summary, props iceberg.Properties) (*table.Table, error) {
	var del, add []iceberg.DataFile
	for _, d := range days {
		if Digest(cur[d]) == Digest(src[d]) {
			continue // already those files: nothing to swap
		}
		del = append(del, cur[d]...)
		add = append(add, src[d]...)
	}
	txn, err := pinnedTxn(tbl, ref)
	if err != nil {
		return nil, err
	}
	if len(del)+len(add) > 0 {
		if err := txn.ReplaceDataFilesWithDataFiles(ctx, del, add, summary); err != nil {
			return nil, fmt.Errorf("stage the swap of %d partitions on %s: %w", len(days), ref, err)
		}
	} else if err := emptyAppend(ctx, txn, summary); err != nil {
		return nil, err
	}
	if len(props) > 0 {
		if err := txn.SetProperties(props); err != nil {
			return nil, err
		}
	}
	return commitStaged(ctx, cat, tbl, txn)
}

// classify marks the guards' errors for the exit code: a refusal (4), a
// ref that does not exist (2). Errors already marked keep their mark.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if _, marked := errkind.Of(err); marked {
		return err
	}
	switch {
	case errors.Is(err, ErrNoSuchRef), errors.Is(err, catalog.ErrNoSuchTable), errors.Is(err, catalog.ErrNoSuchNamespace):
		return errkind.UsageError(err)
	case errors.Is(err, ErrNotValidated), errors.Is(err, ErrUncovered), errors.Is(err, ErrRisk), errors.Is(err, ErrMainMoved),
		errors.Is(err, ErrLaterChanges), errors.Is(err, ErrNothingToDo), errors.Is(err, ErrNotMainLineage):
		return errkind.RefusedError(err)
	}
	return err
}

// UncoveredDays lists the partitions main changed since branch forked from
// it that the branch has not recomputed after the change and whose files
// on the branch are not main's (oldest first): what `run --catch-up`
// recomputes before a promotion can rebase.
func UncoveredDays(ctx context.Context, tbl *table.Table, branch string, state *State) ([]string, error) {
	head, main := tbl.SnapshotByName(branch), tbl.CurrentSnapshot()
	if head == nil || main == nil {
		return nil, nil
	}
	if builtOn(tbl, branch, head, main) {
		return nil, nil
	}
	lookup := tbl.Metadata().SnapshotByID
	fork := commonAncestor(head.SnapshotID, main.SnapshotID, lookup)
	if fork == 0 {
		// History cut by expiry: fall back to the snapshot the branch was
		// made from (or last rebased onto), compared file by file.
		fork = int64(tbl.Properties().GetInt(baseProperty(branch), 0))
		if fork == 0 || tbl.SnapshotByID(fork) == nil {
			return nil, errkind.Refusedf("branch %s and main share no history that is still in the metadata; cannot tell what main changed", branch)
		}
	}
	changes, err := ChangedPartitions(ctx, tbl, fork, main.SnapshotID, branch)
	if err != nil {
		return nil, err
	}
	var stale []features.Date
	for _, day := range SortedDays(changes) {
		if cp, done := state.Checkpoints[day.String()]; !done || !recomputedAfter(cp, changes[day]) {
			stale = append(stale, day)
		}
	}
	if len(stale) == 0 {
		return nil, nil
	}
	// A day whose files on the branch are main's files has nothing to
	// catch up, and a rebase leaves it as it is. This matters once
	// trimming cut the history: a fast-forward promotion published the
	// branch's own days, and comparing its recorded base with main dates
	// them as main's changes.
	onBranch, err := FilesByPartition(ctx, tbl, head.SnapshotID)
	if err != nil {
		return nil, err
	}
	onMain, err := FilesByPartition(ctx, tbl, main.SnapshotID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, day := range stale {
		if Digest(onBranch[day]) != Digest(onMain[day]) {
			out = append(out, day.String())
		}
	}
	return out, nil
}

// recomputedAfter reports whether checkpoint cp was committed after change:
// by table sequence number (exact), or by time for checkpoints written
// before sequence numbers were recorded.
func recomputedAfter(cp Checkpoint, ch *Change) bool {
	if cp.Seq > 0 {
		return cp.Seq > ch.Seq
	}
	return cp.CommittedAt > ch.At
}

// builtOn reports whether branch's head is built on main's head: main is in
// its history, or main is still at the snapshot the branch was made from
// (or last promoted to), which the branch's history, trimmed by its
// commits, may no longer reach.
func builtOn(tbl *table.Table, branch string, head, main *table.Snapshot) bool {
	if table.IsAncestorOf(head.SnapshotID, main.SnapshotID, tbl.Metadata().SnapshotByID) {
		return true
	}
	base := int64(tbl.Properties().GetInt(baseProperty(branch), 0))
	return base != 0 && base == main.SnapshotID
}

// commonAncestor is the newest snapshot in both histories (0 if none).
func commonAncestor(a, b int64, lookup table.SnapshotLookup) int64 {
	inA := map[int64]bool{}
	for _, s := range table.AncestorsOf(a, lookup) {
		inA[s.SnapshotID] = true
	}
	for _, s := range table.AncestorsOf(b, lookup) {
		if inA[s.SnapshotID] {
			return s.SnapshotID
		}
	}
	return 0
}
