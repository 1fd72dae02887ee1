package validate

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is the result of Compare. Pass is false when any check failed.
type Report struct {
	Pass              bool   `json:"pass"`
	Base              string `json:"base"`
	Candidate         string `json:"candidate"`
	BaseSnapshot      int64  `json:"base_snapshot"`
	CandidateSnapshot int64  `json:"candidate_snapshot"`
	From              string `json:"from"`
	To                string `json:"to"`
	ExpectedFile      string `json:"expected_file"`
	// Counts are the checks by status.
	Counts map[string]int `json:"counts"`

	BaseStats      SideStats `json:"base_stats"`
	CandidateStats SideStats `json:"candidate_stats"`

	Partitions PartitionDiff `json:"partitions"`
	// Metrics: every additive metric by every dimension, all groups.
	Metrics []MetricTable `json:"metrics"`
	// Columns: null counts of every column of either side and its class.
	Columns    []ColumnNulls     `json:"columns"`
	LTV        LTVReport         `json:"ltv"`
	Invariants []InvariantResult `json:"invariants"`
	Keys       KeyDiff           `json:"keys"`
	// Sample of differing keys, old beside new.
	Sample []SampleRow `json:"sample"`
	// Declarations of the expected file and how many groups each matched
	// (as expected or violated); 0 means declared but not observed.
	Declarations []DeclarationUse `json:"declarations"`
	// Checks are the verdicts, in report order.
	Checks  []Check `json:"checks"`
	Seconds float64 `json:"seconds"`
}

// Check is one verdict. For metrics, Base and Candidate are the values and
// RelDiff is (candidate − base)/|base| (or relative to the base of the
// declaration's relative_to metric; ±Inf, written as null in JSON with
// rel_diff_text, when that base is 0). For null rates and columns they are
// the null shares and RelDiff is the change of share (candidate − base);
// for ltv_ks, Candidate and RelDiff are the KS statistic D; for invariants,
// the violation counts of each side (only the candidate's are judged).
type Check struct {
	Section   string  `json:"section"`
	Name      string  `json:"name"`
	Dimension string  `json:"dimension,omitempty"`
	Group     string  `json:"group,omitempty"`
	Status    string  `json:"status"` // pass, expected or fail
	Base      float64 `json:"base"`
	Candidate float64 `json:"candidate"`
	RelDiff   float64 `json:"rel_diff"`
	Message   string  `json:"message,omitempty"`
	// Reason is the declaration's reason when the check is expected.
	Reason string `json:"reason,omitempty"`
}

// Label names the check: "gross_revenue_cents by channel = email".
func (c Check) Label() string {
	s := c.Name
	if c.Dimension != "" && c.Section != SectionInvariants {
		s += " by " + c.Dimension
	}
	if c.Group != "" {
		if c.Section == SectionInvariants {
			s += " (" + c.Group + ")"
		} else {
			s += " = " + c.Group
		}
	}
	return s
}

type checkJSON struct {
	Section     string   `json:"section"`
	Name        string   `json:"name"`
	Dimension   string   `json:"dimension,omitempty"`
	Group       string   `json:"group,omitempty"`
	Status      string   `json:"status"`
	Base        float64  `json:"base"`
	Candidate   float64  `json:"candidate"`
	RelDiff     *float64 `json:"rel_diff"`
	RelDiffText string   `json:"rel_diff_text,omitempty"`
	Message     string   `json:"message,omitempty"`
	Reason      string   `json:"reason,omitempty"`
}

// MarshalJSON writes a non-finite RelDiff as null plus rel_diff_text.
func (c Check) MarshalJSON() ([]byte, error) {
	j := checkJSON{Section: c.Section, Name: c.Name, Dimension: c.Dimension, Group: c.Group, Status: c.Status,
		Base: c.Base, Candidate: c.Candidate, Message: c.Message, Reason: c.Reason}
	j.RelDiff, j.RelDiffText = finite(c.RelDiff)
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Check) UnmarshalJSON(b []byte) error {
	var j checkJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Check{Section: j.Section, Name: j.Name, Dimension: j.Dimension, Group: j.Group, Status: j.Status,
		Base: j.Base, Candidate: j.Candidate, Message: j.Message, Reason: j.Reason, RelDiff: unfinite(j.RelDiff, j.RelDiffText)}
	return nil
}

type groupDiffJSON struct {
	Group       string   `json:"group"`
	Base        int64    `json:"base"`
	Candidate   int64    `json:"candidate"`
	RelDiff     *float64 `json:"rel_diff"`
	RelDiffText string   `json:"rel_diff_text,omitempty"`
	Status      string   `json:"status"`
	Note        string   `json:"note,omitempty"`
}

// MarshalJSON writes a non-finite RelDiff as null plus rel_diff_text.
func (g GroupDiff) MarshalJSON() ([]byte, error) {
	j := groupDiffJSON{Group: g.Group, Base: g.Base, Candidate: g.Candidate, Status: g.Status, Note: g.Note}
	j.RelDiff, j.RelDiffText = finite(g.RelDiff)
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (g *GroupDiff) UnmarshalJSON(b []byte) error {
	var j groupDiffJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*g = GroupDiff{Group: j.Group, Base: j.Base, Candidate: j.Candidate, Status: j.Status, Note: j.Note, RelDiff: unfinite(j.RelDiff, j.RelDiffText)}
	return nil
}

func finite(x float64) (*float64, string) {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return nil, fmtRel(x)
	}
	return &x, ""
}

func unfinite(p *float64, text string) float64 {
	if p != nil {
		return *p
	}
	switch text {
	case "+inf":
		return math.Inf(1)
	case "-inf":
		return math.Inf(-1)
	}
	return math.NaN()
}

// SideStats describe one ref over the range.
type SideStats struct {
	Ref        string   `json:"ref"`
	SnapshotID int64    `json:"snapshot_id"`
	Files      int      `json:"files"`
	Rows       int64    `json:"rows"`
	Partitions int      `json:"partitions"`
	Customers  int      `json:"customers"`
	Columns    []string `json:"columns"`
}

// PartitionDiff lists the partitions (event_date) of each side.
type PartitionDiff struct {
	Base          int      `json:"base"`
	Candidate     int      `json:"candidate"`
	Both          int      `json:"both"`
	OnlyBase      []string `json:"only_base"`
	OnlyCandidate []string `json:"only_candidate"`
}

// Column classes.
const (
	ColumnCommon   = "common"    // non-null values on both sides: null rates compared
	ColumnNew      = "new"       // absent or all null on base, values on the candidate
	ColumnDropped  = "dropped"   // values on base, absent or all null on the candidate
	ColumnNullBoth = "null_both" // absent or all null on both sides
)

// ColumnNulls are a column's null counts on each side.
type ColumnNulls struct {
	Column         string  `json:"column"`
	Class          string  `json:"class"`
	InBase         bool    `json:"in_base_schema"`
	InCandidate    bool    `json:"in_candidate_schema"`
	BaseNulls      int64   `json:"base_nulls"`
	CandidateNulls int64   `json:"candidate_nulls"`
	BaseRate       float64 `json:"base_null_rate"`
	CandidateRate  float64 `json:"candidate_null_rate"`
}

// LTVReport compares the distribution of customer lifetime value (the sum
// of net_revenue_cents per customer over the range) of the two refs.
type LTVReport struct {
	Base      Distribution `json:"base"`
	Candidate Distribution `json:"candidate"`
	// Customers on one side only (e.g. refunds-only customers).
	OnlyBase      int     `json:"only_base"`
	OnlyCandidate int     `json:"only_candidate"`
	KSD           float64 `json:"ks_d"`
	KSPValue      float64 `json:"ks_p_value"`
}

// InvariantResult counts the violations of an invariant on each side (the
// candidate's fail the validation), with example keys of the candidate.
type InvariantResult struct {
	Name      string   `json:"name"`
	Column    string   `json:"column"`
	Base      int64    `json:"base"`
	Candidate int64    `json:"candidate"`
	Examples  []string `json:"examples"`
}

// KeyDiff counts keys by how they compare.
type KeyDiff struct {
	Common        int64 `json:"common"`
	OnlyBase      int64 `json:"only_base"`
	OnlyCandidate int64 `json:"only_candidate"`
	// Differing common keys, ignoring new and dropped columns.
	Differing int64 `json:"differing"`
	// DifferingByColumn counts common keys differing in each column.
	DifferingByColumn map[string]int64 `json:"differing_by_column"`
	IgnoredColumns    []string         `json:"ignored_columns"`
}

// SampleRow is a differing key with both versions of its row (nil: absent).
type SampleRow struct {
	EventDate  string     `json:"event_date"`
	CustomerID string     `json:"customer_id"`
	Channel    string     `json:"channel"`
	Differs    []string   `json:"differs"`
	Base       *RowValues `json:"base"`
	Candidate  *RowValues `json:"candidate"`
}

// RowValues are the non-key values of a row; nil fields are null.
type RowValues struct {
	Orders             *int64   `json:"orders"`
	GrossRevenueCents  *int64   `json:"gross_revenue_cents"`
	RefundCents        *int64   `json:"refund_cents"`
	NetRevenueCents    *int64   `json:"net_revenue_cents"`
	Country            *string  `json:"country"`
	Touches7d          *int64   `json:"touches_7d"`
	DistinctChannels7d *int32   `json:"distinct_channels_7d"`
	AvgHoursToConvert  *float64 `json:"avg_hours_to_convert"`
}

// DeclarationUse is an expected-file entry and the groups it matched.
type DeclarationUse struct {
	Declaration string `json:"declaration"`
	Reason      string `json:"reason"`
	Line        int    `json:"line,omitempty"`
	Matched     int    `json:"matched"`
}

// Failed returns the failing checks.
func (r *Report) Failed() []Check { return r.withStatus(StatusFail) }

func (r *Report) withStatus(status string) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == status {
			out = append(out, c)
		}
	}
	return out
}

// Table returns the metric table of metric by dimension, or nil.
func (r *Report) Table(metric, dimension string) *MetricTable {
	for i := range r.Metrics {
		if r.Metrics[i].Metric == metric && r.Metrics[i].Dimension == dimension {
			return &r.Metrics[i]
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// maxTextFailures caps the failed checks listed on the terminal, and
// maxTextGroups the groups of a dimension (--report has them all).
const (
	maxTextFailures      = 60
	maxTextGroupFailures = 3
	maxTextGroups        = 15
)

// WriteText writes the report for a terminal: the verdict, the failed
// checks, then a section per kind of check and the sample.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	for _, section := range []func(*errWriter){
		r.writeHeader, r.writeFailed, r.writePartitions, r.writeMetrics, r.writeColumns,
		r.writeLTV, r.writeInvariants, r.writeKeys, r.writeUnobserved,
	} {
		section(ew)
	}
	return ew.err
}

// writeHeader writes what was compared and the verdict.
func (r *Report) writeHeader(ew *errWriter) {
	p := ew.printf
	p("icefill validate: base %s (snapshot %d) vs candidate %s (snapshot %d)\n", r.Base, r.BaseSnapshot, r.Candidate, r.CandidateSnapshot)
	rng := "all partitions"
	if r.From != "" || r.To != "" {
		rng = fmt.Sprintf("event_date %s … %s", orDash(r.From, "start"), orDash(r.To, "end"))
	}
	exp := "none (every difference beyond the rule fails)"
	if r.ExpectedFile != "" {
		exp = fmt.Sprintf("%s (%d declarations)", r.ExpectedFile, len(r.Declarations))
	}
	p("range: %s; expected differences: %s\n\n", rng, exp)
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	p("RESULT: %s (%d checks failed, %d differ as declared, %d passed; %.1fs)\n",
		verdict, r.Counts[StatusFail], r.Counts[StatusExpected], r.Counts[StatusPass], r.Seconds)
}

// writeFailed lists every failed check, except that a metric's failing
// groups are capped (its summary line says how many there are).
func (r *Report) writeFailed(ew *errWriter) {
	failed := r.Failed()
	if len(failed) == 0 {
		return
	}
	ew.printf("\nFAILED CHECKS\n")
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  CHECK\tFIGURES\tWHY\n")
	isGroup := func(c Check) bool { return c.Section == SectionMetrics && c.Group != "" && c.Dimension != DimOverall }
	perTable := map[string]int{}
	lines, skipped := 0, 0
	for _, groups := range []bool{false, true} {
		for _, c := range failed {
			if isGroup(c) != groups {
				continue
			}
			if groups {
				k := c.Name + "/" + c.Dimension
				if perTable[k]++; perTable[k] > maxTextGroupFailures {
					skipped++
					continue
				}
			}
			if lines == maxTextFailures {
				skipped++
				continue
			}
			lines++
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Label(), checkFigures(c), c.Message)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(tw, "  … and %d more failed groups (see the tables below and --report)\n", skipped)
	}
	tw.Flush()
}

// writePartitions writes the partitions on each side.
func (r *Report) writePartitions(ew *errWriter) {
	p := ew.printf
	pd := r.Partitions
	p("\nPARTITIONS  base %d, candidate %d, on both %d, only on base: %s, only on candidate: %s  [%s]\n",
		pd.Base, pd.Candidate, pd.Both, listOrNone(pd.OnlyBase), listOrNone(pd.OnlyCandidate), r.sectionStatus(SectionPartitions))
}

// writeMetrics writes the metrics overall, then a matrix per dimension.
func (r *Report) writeMetrics(ew *errWriter) {
	p := ew.printf
	share, tol := DefaultGroupShare, DefaultTolerance
	if t := r.Table(MetricRows, DimEventDate); t != nil {
		share, tol = t.GroupShare, t.Tolerance
	}
	p("\nMETRICS  (a metric passes when at least %s of a dimension's groups differ by less than %s, unless declared)\n", fmtShare(share), fmtShare(tol))
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  METRIC\tDIMENSION\tGROUPS\tBASE\tCANDIDATE\tDIFF\tSTATUS\tNOTE\n")
	for _, c := range r.Checks {
		if c.Section != SectionMetrics || (c.Group != "" && c.Dimension != DimOverall) {
			continue
		}
		t := r.Table(c.Name, c.Dimension)
		n := 0
		if t != nil {
			n = len(t.Groups)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Dimension, n, fmtNum(c.Base), fmtNum(c.Candidate), fmtRel(c.RelDiff), c.Status, shorten(c.Message, 110))
	}
	tw.Flush()
	for _, dim := range groupDimensions[1:] {
		r.writeMatrix(ew, dim)
	}
}

// writeColumns writes null rates and new and dropped columns.
func (r *Report) writeColumns(ew *errWriter) {
	p := ew.printf
	p("\nNULL RATES AND COLUMNS  [%s / %s]\n", r.sectionStatus(SectionNullRates), r.sectionStatus(SectionColumns))
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  COLUMN\tCLASS\tBASE NULLS\tCANDIDATE NULLS\tCHANGE\tSTATUS\tNOTE\n")
	for _, col := range r.Columns {
		c, _ := r.columnCheck(col.Column)
		base := fmtShare(col.BaseRate)
		if !col.InBase {
			base = "absent"
		}
		cand := fmtShare(col.CandidateRate)
		if !col.InCandidate {
			cand = "absent"
		}
		note := c.Message
		if c.Reason != "" && !strings.Contains(note, c.Reason) {
			note += ": " + c.Reason
		}
		change := fmt.Sprintf("%+.2fpp", (col.CandidateRate-col.BaseRate)*100)
		if col.Class == ColumnNew || col.Class == ColumnDropped {
			change = col.Class
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", col.Column, col.Class, base, cand, change, c.Status, shorten(note, 100))
	}
	tw.Flush()
}

// writeLTV writes the customer lifetime value distributions.
func (r *Report) writeLTV(ew *errWriter) {
	p := ew.printf
	l := r.LTV
	p("\nCUSTOMER LIFETIME VALUE  (sum of net_revenue_cents per customer over the range)  [%s]\n", r.sectionStatus(SectionLTV))
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  \tCUSTOMERS\tMEAN\tMIN\tP50\tP90\tP99\tMAX\t\n")
	for _, x := range []struct {
		name string
		d    Distribution
	}{{"base", l.Base}, {"candidate", l.Candidate}} {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.name, x.d.Customers, fmtNum(math.Round(x.d.Mean)), fmtNum(float64(x.d.Min)),
			fmtNum(float64(x.d.P50)), fmtNum(float64(x.d.P90)), fmtNum(float64(x.d.P99)), fmtNum(float64(x.d.Max)))
	}
	tw.Flush()
	p("  customers only on base %d, only on candidate %d\n", l.OnlyBase, l.OnlyCandidate)
	for _, c := range r.Checks {
		if c.Section == SectionLTV {
			msg := ltvFigures(c)
			if c.Name == MetricLTVKS {
				msg = c.Message
			}
			p("  %-8s %-8s %s\n", c.Name, c.Status, msg)
		}
	}
}

// writeInvariants writes the candidate's invariants.
func (r *Report) writeInvariants(ew *errWriter) {
	p := ew.printf
	p("\nINVARIANTS OF THE CANDIDATE  [%s]\n", r.sectionStatus(SectionInvariants))
	for _, inv := range r.Invariants {
		status := "pass"
		if inv.Candidate > 0 {
			status = "FAIL"
		}
		name := inv.Name
		if inv.Column != "" {
			name += " (" + inv.Column + ")"
		}
		p("  %-4s  %-40s candidate %d violations (base %d)\n", status, name, inv.Candidate, inv.Base)
		for _, e := range inv.Examples {
			p("          e.g. %s\n", e)
		}
	}
}

// writeKeys writes the key counts and the sample of differing keys.
func (r *Report) writeKeys(ew *errWriter) {
	p := ew.printf
	k := r.Keys
	p("\nKEYS  common %d, only on base %d, only on candidate %d, differing %d", k.Common, k.OnlyBase, k.OnlyCandidate, k.Differing)
	if len(k.IgnoredColumns) > 0 {
		p(" (ignoring new/dropped columns %s)", strings.Join(k.IgnoredColumns, ", "))
	}
	p("\n")
	if len(r.Sample) > 0 {
		p("SAMPLE of %d differing keys (smallest by key hash; keys on both sides first, then keys on one side only), base above candidate:\n", len(r.Sample))
		tw := tabwriter.NewWriter(ew, 0, 4, 1, ' ', 0)
		fmt.Fprintf(tw, "  KEY\tSIDE\tORDERS\tGROSS\tREFUND\tNET\tCOUNTRY\tTOUCHES_7D\tDISTINCT_CH_7D\tAVG_H_TO_CONVERT\tDIFFERS\n")
		for _, s := range r.Sample {
			key := s.EventDate + " " + s.CustomerID + " " + s.Channel
			fmt.Fprintf(tw, "  %s\tbase\t%s\t%s\n", key, rowCells(s.Base), strings.Join(s.Differs, ","))
			fmt.Fprintf(tw, "  \tcandidate\t%s\t\n", rowCells(s.Candidate))
		}
		tw.Flush()
	}
}

// writeUnobserved lists declarations no group matched.
func (r *Report) writeUnobserved(ew *errWriter) {
	p := ew.printf
	var unused []DeclarationUse
	for _, d := range r.Declarations {
		if d.Matched == 0 {
			unused = append(unused, d)
		}
	}
	if len(unused) > 0 {
		p("\nDECLARED BUT NOT OBSERVED (no group differed beyond the tolerance)\n")
		for _, d := range unused {
			p("  line %d: %s\n", d.Line, d.Declaration)
		}
	}
}

// writeMatrix prints a dimension's groups against the metrics: relative
// difference and status of each. Dimensions with many groups show only the
// groups that are not plain passes.
func (r *Report) writeMatrix(w io.Writer, dim string) {
	var tables []*MetricTable
	for _, m := range additiveMetrics {
		if t := r.Table(m, dim); t != nil {
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 || len(tables[0].Groups) == 0 {
		return
	}
	groups := tables[0].Groups
	show := make([]int, 0, len(groups))
	for i := range groups {
		interesting := false
		for _, t := range tables {
			if i < len(t.Groups) && (t.Groups[i].Status != StatusPass || t.Groups[i].Note != "") {
				interesting = true
			}
		}
		if len(groups) <= maxTextGroups || interesting {
			show = append(show, i)
		}
	}
	hidden := len(groups) - len(show)
	fmt.Fprintf(w, "\n  by %s (%s", dim, plural(len(groups), "group"))
	if hidden > 0 {
		fmt.Fprintf(w, "; %d all within tolerance not shown", hidden)
	}
	fmt.Fprintf(w, ")\n")
	if len(show) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "    %s", strings.ToUpper(dim))
	for _, t := range tables {
		fmt.Fprintf(tw, "\t%s", t.Metric)
	}
	fmt.Fprintf(tw, "\n")
	for n, i := range show {
		if n == maxTextGroups {
			fmt.Fprintf(tw, "    … %d more\n", len(show)-n)
			break
		}
		fmt.Fprintf(tw, "    %s", groups[i].Group)
		for _, t := range tables {
			g := t.Groups[i]
			fmt.Fprintf(tw, "\t%s %s", fmtRel(g.RelDiff), statusMark(g))
		}
		fmt.Fprintf(tw, "\n")
	}
	tw.Flush()
}

func statusMark(g GroupDiff) string {
	switch {
	case g.Status == StatusFail:
		return "FAIL"
	case g.Status == StatusExpected:
		return "exp"
	case g.Note != "":
		return "tol"
	}
	return "ok"
}

// sectionStatus is the worst status of a section's checks.
func (r *Report) sectionStatus(section string) string {
	worst := StatusPass
	for _, c := range r.Checks {
		if c.Section != section {
			continue
		}
		if c.Status == StatusFail {
			return "FAIL"
		}
		if c.Status == StatusExpected {
			worst = StatusExpected
		}
	}
	return worst
}

func (r *Report) columnCheck(col string) (Check, bool) {
	for _, c := range r.Checks {
		if (c.Section == SectionNullRates || c.Section == SectionColumns) && c.Group == col {
			return c, true
		}
	}
	return Check{}, false
}

func checkFigures(c Check) string {
	switch c.Section {
	case SectionInvariants:
		return fmt.Sprintf("candidate %s (base %s)", fmtNum(c.Candidate), fmtNum(c.Base))
	case SectionNullRates, SectionColumns:
		return fmt.Sprintf("null %s → %s", fmtShare(c.Base), fmtShare(c.Candidate))
	case SectionLTV:
		return ltvFigures(c)
	}
	return fmt.Sprintf("%s → %s (%s)", fmtNum(c.Base), fmtNum(c.Candidate), fmtRel(c.RelDiff))
}

func ltvFigures(c Check) string {
	if c.Name == MetricLTVKS {
		return fmt.Sprintf("D = %.4f", c.Candidate)
	}
	s := fmt.Sprintf("%s → %s (%s)", fmtNum(c.Base), fmtNum(c.Candidate), fmtRel(c.RelDiff))
	if c.Status != StatusPass && c.Message != "" {
		s += "  " + c.Message
	}
	return s
}

func rowCells(v *RowValues) string {
	if v == nil {
		return strings.Repeat("-\t", 7) + "-"
	}
	return strings.Join(v.Texts(), "\t")
}

// Texts are the row's values as text, in SampleColumns order ("null" for
// nulls).
func (v *RowValues) Texts() []string {
	i := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmtNum(float64(*p))
	}
	country, distinct, avg := "null", "null", "null"
	if v.Country != nil {
		country = *v.Country
	}
	if v.DistinctChannels7d != nil {
		distinct = fmt.Sprint(*v.DistinctChannels7d)
	}
	if v.AvgHoursToConvert != nil {
		avg = fmt.Sprintf("%.3f", *v.AvgHoursToConvert)
	}
	return []string{i(v.Orders), i(v.GrossRevenueCents), i(v.RefundCents), i(v.NetRevenueCents),
		country, i(v.Touches7d), distinct, avg}
}

// SampleColumns name the values of RowValues.Texts.
var SampleColumns = []string{"orders", "gross_revenue_cents", "refund_cents", "net_revenue_cents", "country", "touches_7d", "distinct_channels_7d", "avg_hours_to_convert"}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	if len(l) > 10 {
		return strings.Join(l[:10], ", ") + fmt.Sprintf(" … (%d)", len(l))
	}
	return strings.Join(l, ", ")
}

func orDash(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return len(b), nil
	}
	n, err := e.w.Write(b)
	if err != nil {
		e.err = err
	}
	return n, nil
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// sortedKeys returns a map's keys in byte order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
