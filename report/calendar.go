package report

import (
	"fmt"
	"time"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/snapshots"
)

// Partition states shown on the calendar.
const (
	StateDone          = "done"
	StateFailed        = "failed"
	StateTodo          = "todo"
	StateSourceChanged = "source-changed"
	StateLogicChanged  = "logic-changed"
)

// states in legend order, with the words the legend uses.
var states = []struct{ Key, Label, Help string }{
	{StateDone, "done", "committed with the plan's logic and current input"},
	{StateFailed, "failed", "the last attempt failed; hover for the error"},
	{StateSourceChanged, "source changed", "committed, but its input files changed since: will be recomputed"},
	{StateLogicChanged, "logic changed", "committed by another logic version: will be recomputed"},
	{StateTodo, "to do", "not committed yet"},
}

// Partition is one planned partition and its state.
type Partition struct {
	Day   features.Date
	State string
	// Detail is the failure text, or what the checkpoint says.
	Detail string
}

// Partitions classifies every day of the branch's plan (or, without a
// plan, every committed or failed day) from the state alone.
func Partitions(st *snapshots.State) []Partition {
	from, to, ok := planRange(st)
	if !ok {
		return nil
	}
	logic := ""
	if st.Plan != nil {
		logic = st.Plan.Logic
	}
	out := make([]Partition, 0, int(to-from)+1)
	for d := from; d <= to; d++ {
		day := d.String()
		cp, done := st.Checkpoints[day]
		f, failed := st.Failures[day]
		p := Partition{Day: d, State: StateTodo, Detail: "to do: not committed yet"}
		switch {
		case failed && (!done || f.At > cp.CommittedAt):
			p.State = StateFailed
			p.Detail = fmt.Sprintf("failed %s (run %s): %s", fmtTime(time.UnixMilli(f.At)), f.RunID, f.Error)
		case done && logic != "" && cp.Logic != logic:
			p.State = StateLogicChanged
			p.Detail = fmt.Sprintf("logic changed: committed by logic %s, the plan's is %s", cp.Logic, logic)
		case done && st.IsSourceChanged(day):
			p.State = StateSourceChanged
			p.Detail = fmt.Sprintf("source changed: input files differ from those read %s", fmtTime(time.UnixMilli(cp.CommittedAt)))
		case done:
			p.State = StateDone
			p.Detail = fmt.Sprintf("done %s: %s events, %s rows, %.1fs", fmtTime(time.UnixMilli(cp.CommittedAt)), fmtInt(cp.InputRows), fmtInt(cp.OutputRows), cp.Seconds)
		}
		out = append(out, p)
	}
	return out
}

func planRange(st *snapshots.State) (from, to features.Date, ok bool) {
	if st.Plan != nil {
		f, err1 := features.ParseDate(st.Plan.From)
		t, err2 := features.ParseDate(st.Plan.To)
		if err1 == nil && err2 == nil && f <= t {
			return f, t, true
		}
	}
	first := true
	note := func(day string) {
		d, err := features.ParseDate(day)
		if err != nil {
			return
		}
		if first || d < from {
			from = d
		}
		if first || d > to {
			to = d
		}
		first = false
	}
	for day := range st.Checkpoints {
		note(day)
	}
	for day := range st.Failures {
		note(day)
	}
	return from, to, !first
}

// Calendar geometry: one block per year, a column per week (Monday
// first), a row per weekday.
const (
	cellSize = 11
	cellStep = 13
	calLeft  = 30
	calTop   = 16
)

type calendarView struct {
	Years  []yearView
	Legend []legendItem
	Total  int
}

type yearView struct {
	Year          int
	Width, Height int
	Cells         []cellView
	Months        []labelView
	Weekdays      []labelView
}

type cellView struct {
	X, Y  int
	Day   string
	State string
	Title string
}

type labelView struct {
	X, Y int
	Text string
}

type legendItem struct {
	Key, Label, Help string
	Count            int
}

func calendar(parts []Partition) calendarView {
	cv := calendarView{Total: len(parts)}
	counts := map[string]int{}
	var cur *yearView
	for _, p := range parts {
		counts[p.State]++
		t := p.Day.Time()
		if cur == nil || cur.Year != t.Year() {
			cv.Years = append(cv.Years, newYear(t.Year()))
			cur = &cv.Years[len(cv.Years)-1]
		}
		week, wd := weekOf(t)
		cur.Cells = append(cur.Cells, cellView{X: calLeft + week*cellStep, Y: calTop + wd*cellStep, Day: p.Day.String(), State: p.State,
			Title: p.Day.String() + " " + t.Weekday().String()[:3] + " — " + p.Detail})
	}
	for _, s := range states {
		cv.Legend = append(cv.Legend, legendItem{Key: s.Key, Label: s.Label, Help: s.Help, Count: counts[s.Key]})
	}
	return cv
}

// weekOf is the week column (0-based, weeks start on Monday) and weekday
// row of t within its year.
func weekOf(t time.Time) (week, weekday int) {
	jan1 := time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	offset := (int(jan1.Weekday()) + 6) % 7 // Monday = 0
	weekday = (int(t.Weekday()) + 6) % 7
	week = (t.YearDay() - 1 + offset) / 7
	return week, weekday
}

func newYear(y int) yearView {
	dec31 := time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)
	weeks, _ := weekOf(dec31)
	yv := yearView{Year: y, Width: calLeft + (weeks+1)*cellStep + 2, Height: calTop + 7*cellStep + 2}
	for m := time.January; m <= time.December; m++ {
		w, _ := weekOf(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC))
		yv.Months = append(yv.Months, labelView{X: calLeft + w*cellStep, Y: calTop - 5, Text: m.String()[:3]})
	}
	for i, name := range []string{"Mon", "Wed", "Fri"} {
		yv.Weekdays = append(yv.Weekdays, labelView{X: calLeft - 6, Y: calTop + (2*i)*cellStep + cellSize - 2, Text: name})
	}
	return yv
}
