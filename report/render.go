package report

import (
	"bufio"
	"embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/icefill/icefill/snapshots"
)

//go:embed templates/page.html.tmpl templates/style.css
var files embed.FS

var page = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"add": func(a, b int) int { return a + b },
	"f1":  func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"anchor": func(i, n int) string {
		switch {
		case i == 0:
			return "start"
		case i == n-1:
			return "end"
		}
		return "middle"
	},
}).ParseFS(files, "templates/page.html.tmpl"))

var style = func() template.CSS {
	b, err := files.ReadFile("templates/style.css")
	if err != nil {
		panic(err)
	}
	return template.CSS(b)
}()

// view is what the template reads.
type view struct {
	Title     string
	Style     template.CSS
	Meta      []metaItem
	Generated string
	// Full is false for the validation-only page.
	Full       bool
	Branch     string
	HasPlan    bool
	Plan       *snapshots.Plan
	Calendar   calendarView
	Progress   progressView
	Validation *validationView
	History    []historyItem
	Failures   []Partition
	// SetAside says why the stored checkpoints were not used.
	SetAside string
}

type metaItem struct{ Key, Value string }

type historyItem struct {
	When, Kind, Class, Headline, Who string
	Lines                            []string
	Other                            bool
}

// Render writes the full report page of p.
func Render(w io.Writer, p *Page) error {
	parts := Partitions(p.State)
	v := view{
		Title:     fmt.Sprintf("icefill · %s · %s", p.Table, p.Branch),
		Style:     style,
		Generated: fmtTime(p.Generated),
		Full:      true,
		Branch:    p.Branch,
		HasPlan:   len(parts) > 0,
		Plan:      p.State.Plan,
		Calendar:  calendar(parts),
		Progress:  progress(p, parts),
		History:   history(p),
	}
	v.Meta = []metaItem{{"table", p.Table}, {"catalog", p.Catalog}, {"branch", p.Branch}, {"branch head", snapshotText(p.Head, "no such branch")},
		{p.Base + " head", snapshotText(p.BaseHead, "none")}}
	if pl := p.State.Plan; pl != nil {
		v.Meta = append(v.Meta, metaItem{"plan", fmt.Sprintf("%s … %s, logic %s, source %s", pl.From, pl.To, pl.Logic, pl.Source)})
		if pl.Base != 0 {
			v.Meta = append(v.Meta, metaItem{"forked from", fmt.Sprintf("%s snapshot %d", p.Base, pl.Base)})
		}
	}
	v.Meta = append(v.Meta, metaItem{"generated", v.Generated})
	for _, x := range parts {
		if x.State == StateFailed {
			v.Failures = append(v.Failures, x)
		}
	}
	if p.State.SetAside != "" {
		v.SetAside = fmt.Sprintf("%d checkpoints stored for this branch are not counted: %s.", p.State.SetAsideCheckpoints, p.State.SetAside)
	}
	v.Validation = validationOf(p.Validation, p.Certificate, p.Head)
	return execute(w, v)
}

// ValidationMeta says where a validation-only page comes from.
type ValidationMeta struct {
	Table, Catalog string
	Generated      time.Time
}

// RenderValidation writes a page with the validation alone.
func RenderValidation(w io.Writer, val *Validation, m ValidationMeta) error {
	v := view{
		Title:     fmt.Sprintf("icefill validation · %s · %s vs %s", m.Table, val.Candidate, val.Base),
		Style:     style,
		Generated: fmtTime(m.Generated),
	}
	v.Meta = []metaItem{{"table", m.Table}, {"catalog", m.Catalog},
		{"candidate", fmt.Sprintf("%s, snapshot %d", val.Candidate, val.CandidateSnapshot)},
		{"base", fmt.Sprintf("%s, snapshot %d", val.Base, val.BaseSnapshot)},
		{"generated", v.Generated}}
	v.Validation = validationOf(val, nil, 0)
	v.Validation.Certificate = ""
	return execute(w, v)
}

func execute(w io.Writer, v view) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := page.Execute(bw, v); err != nil {
		return err
	}
	return bw.Flush()
}

func snapshotText(id int64, none string) string {
	if id == 0 {
		return none
	}
	return fmt.Sprintf("snapshot %d", id)
}

// history lists promotions, rollbacks and tags, newest first.
func history(p *Page) []historyItem {
	type dated struct {
		at   int64
		item historyItem
	}
	var all []dated
	tagged := map[string]bool{}
	for _, e := range p.History {
		it := historyItem{When: fmtTime(time.UnixMilli(e.At)), Who: e.By, Kind: e.Kind, Class: e.Kind, Other: e.Branch != "" && e.Branch != p.Branch}
		switch e.Kind {
		case "promote":
			it.Kind = "promotion"
			it.Headline = fmt.Sprintf("%s published onto %s (%s)", orDash(e.Branch, "a branch"), p.Base, e.Method)
		case "rollback":
			it.Headline = fmt.Sprintf("%s rolled back (%s)", p.Base, e.Method)
		case "write-main":
			it.Kind = "direct write"
			it.Headline = fmt.Sprintf("%s written directly by a run (--write-main), without validation or promotion", p.Base)
			it.Class += " warn"
		default:
			it.Headline = e.Kind + " " + e.Method
		}
		if e.From == 0 {
			it.Lines = append(it.Lines, fmt.Sprintf("%s: no snapshot before → snapshot %d", p.Base, e.To))
		} else {
			it.Lines = append(it.Lines, fmt.Sprintf("%s: snapshot %d → %d", p.Base, e.From, e.To))
		}
		if e.Tag != "" {
			tagged[e.Tag] = true
			it.Lines = append(it.Lines, "kept the previous snapshot as tag "+e.Tag)
		}
		if n := len(e.Partitions); n > 0 {
			it.Lines = append(it.Lines, fmt.Sprintf("%d partitions (%s … %s)", n, slices.Min(e.Partitions), slices.Max(e.Partitions)))
		}
		if val := e.Validation; val != nil {
			it.Lines = append(it.Lines, fmt.Sprintf("validated: %s snapshot %d against %s snapshot %d, %s by %s, %s",
				val.Candidate, val.CandidateSnapshot, val.Base, val.BaseSnapshot, fmtTime(time.UnixMilli(val.At)), val.By, certified(val)))
		}
		if e.Skipped {
			it.Lines = append(it.Lines, "published WITHOUT validation (--skip-validation)")
			it.Class += " warn"
		}
		if e.Forced {
			it.Lines = append(it.Lines, "forced")
			it.Class += " warn"
		}
		if e.RolledBack {
			it.Lines = append(it.Lines, "undone by a later rollback")
			it.Class += " undone"
		}
		if e.Note != "" {
			it.Lines = append(it.Lines, e.Note)
		}
		all = append(all, dated{e.At, it})
	}
	for _, t := range p.Tags {
		if tagged[t.Name] {
			continue
		}
		all = append(all, dated{t.At.UnixMilli(), historyItem{When: fmtTime(t.At), Kind: "tag", Class: "tag",
			Headline: "tag " + t.Name, Lines: []string{fmt.Sprintf("snapshot %d", t.Snapshot)}}})
	}
	slices.SortStableFunc(all, func(a, b dated) int { return int(b.at - a.at) })
	out := make([]historyItem, len(all))
	for i, d := range all {
		out[i] = d.item
		out[i].Who = strings.TrimSpace(out[i].Who)
	}
	return out
}
