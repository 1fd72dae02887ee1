package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/icefill/icefill/internal/human"
	"github.com/icefill/icefill/snapshots"
)

type progressView struct {
	Done, Total, Failed, Todo, SourceChanged, LogicChanged int
	Percent, DoneText, TotalText                           string
	// Segments of the stacked bar, in legend order.
	Segments          []segmentView
	Events, Output    string
	Bytes             string
	Rate, EventRate   string
	ETA               string
	LastCommit        string
	MedianPartition   string
	P90Partition      string
	Chart             *chartView
	Throughput        *chartView
	RateWindowComment string
}

type segmentView struct {
	Key, Label string
	Count      int
	Width      string // percentage of the bar
}

// chartView is a small SVG chart: paths, bars and axis labels in pixels.
type chartView struct {
	Width, Height int
	Left, Bottom  int
	Right, Top    int
	Line          string // SVG path of the cumulative series
	Projection    string // dashed ETA projection
	Bars          []barView
	XLabels       []labelView
	YLabels       []labelView
	Grid          []int // y of horizontal grid lines
	Title         string
}

type barView struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

const (
	chartW, chartH                             = 560, 190
	chartLeft, chartRight, chartTop, chartBott = 52, 14, 12, 26
)

func progress(p *Page, parts []Partition) progressView {
	pv := progressView{Total: len(parts)}
	for _, x := range parts {
		switch x.State {
		case StateDone:
			pv.Done++
		case StateFailed:
			pv.Failed++
		case StateTodo:
			pv.Todo++
		case StateSourceChanged:
			pv.SourceChanged++
		case StateLogicChanged:
			pv.LogicChanged++
		}
	}
	pv.DoneText, pv.TotalText = fmtInt(int64(pv.Done)), fmtInt(int64(pv.Total))
	pv.Percent = "0%"
	if pv.Total > 0 {
		pv.Percent = fmt.Sprintf("%.1f%%", 100*float64(pv.Done)/float64(pv.Total))
		counts := map[string]int{StateDone: pv.Done, StateFailed: pv.Failed, StateTodo: pv.Todo, StateSourceChanged: pv.SourceChanged, StateLogicChanged: pv.LogicChanged}
		for _, s := range states {
			if n := counts[s.Key]; n > 0 {
				pv.Segments = append(pv.Segments, segmentView{Key: s.Key, Label: s.Label, Count: n, Width: fmt.Sprintf("%.3f%%", 100*float64(n)/float64(pv.Total))})
			}
		}
	}
	st := p.Status
	pv.Events, pv.Output, pv.Bytes = fmtInt(st.Events), fmtInt(st.OutputRows), human.Bytes(st.Bytes)
	pv.Rate, pv.ETA, pv.LastCommit = fmtRate(st.PartitionsPerHour), fmtDuration(st.ETA), fmtTime(st.LastCommit)
	pv.EventRate = "—"
	if st.EventsPerSecond > 0 {
		pv.EventRate = fmtInt(int64(st.EventsPerSecond)) + " / s"
	}
	if pv.Total > pv.Done && st.ETA == 0 {
		pv.ETA = "unknown (needs two commits within an hour)"
	}
	if pv.Total > 0 && pv.Done == pv.Total {
		pv.ETA = "finished"
	}
	cps := committed(p.State, parts)
	if len(cps) > 0 {
		secs := make([]float64, len(cps))
		for i, c := range cps {
			secs[i] = c.Seconds
		}
		slices.Sort(secs)
		pv.MedianPartition = fmtDuration(time.Duration(secs[len(secs)/2] * float64(time.Second)))
		pv.P90Partition = fmtDuration(time.Duration(secs[len(secs)*9/10] * float64(time.Second)))
		if secs[len(secs)/2] < 1 {
			pv.MedianPartition = fmt.Sprintf("%.2fs", secs[len(secs)/2])
		}
		if secs[len(secs)*9/10] < 1 {
			pv.P90Partition = fmt.Sprintf("%.2fs", secs[len(secs)*9/10])
		}
		pv.Chart, pv.Throughput = progressCharts(cps, pv.Total, st.ETA)
	}
	return pv
}

// committed are the done partitions' checkpoints, oldest commit first.
func committed(st *snapshots.State, parts []Partition) []snapshots.Checkpoint {
	var out []snapshots.Checkpoint
	for _, x := range parts {
		if x.State == StateDone {
			out = append(out, st.Checkpoints[x.Day.String()])
		}
	}
	slices.SortFunc(out, func(a, b snapshots.Checkpoint) int { return int(a.CommittedAt - b.CommittedAt) })
	return out
}

// progressCharts draws partitions done over time (with the ETA projection
// to the total) and the commit rate per time bin.
func progressCharts(cps []snapshots.Checkpoint, total int, eta time.Duration) (*chartView, *chartView) {
	t0 := cps[0].CommittedAt - int64(cps[0].Seconds*1000)
	last := cps[len(cps)-1].CommittedAt
	span := max(last-t0, 1000)
	end := last
	if eta > 0 {
		end = last + min(eta.Milliseconds(), 3*span)
	}
	plotW, plotH := float64(chartW-chartLeft-chartRight), float64(chartH-chartTop-chartBott)
	x := func(t int64) float64 { return float64(chartLeft) + plotW*float64(t-t0)/float64(max(end-t0, 1)) }
	y := func(n int) float64 { return float64(chartTop) + plotH*(1-float64(n)/float64(max(total, 1))) }

	cum := &chartView{Width: chartW, Height: chartH, Left: chartLeft, Bottom: chartH - chartBott, Right: chartW - chartRight, Top: chartTop,
		Title: "Partitions done over time, with the projection to the total at the last hour's rate"}
	var b strings.Builder
	fmt.Fprintf(&b, "M%.1f %.1f", x(t0), y(0))
	for i, c := range cps {
		fmt.Fprintf(&b, "H%.1fV%.1f", x(c.CommittedAt), y(i+1))
	}
	cum.Line = b.String()
	if eta > 0 && len(cps) < total {
		// Straight to the total at the ETA, cut at the chart's edge.
		tEnd := last + eta.Milliseconds()
		yEnd := float64(total)
		if tEnd > end {
			yEnd = float64(len(cps)) + float64(total-len(cps))*float64(end-last)/float64(tEnd-last)
			tEnd = end
		}
		cum.Projection = fmt.Sprintf("M%.1f %.1fL%.1f %.1f", x(last), y(len(cps)), x(tEnd), float64(chartTop)+plotH*(1-yEnd/float64(max(total, 1))))
	}
	for _, n := range []int{0, total / 2, total} {
		cum.YLabels = append(cum.YLabels, labelView{X: chartLeft - 6, Y: int(y(n)) + 4, Text: fmtInt(int64(n))})
		cum.Grid = append(cum.Grid, int(y(n)))
	}
	cum.XLabels = timeLabels(t0, end, x)

	// Throughput: commits per bin, as partitions per hour.
	bins := min(36, max(len(cps)/2, 1))
	width := float64(last-t0) / float64(bins)
	counts := make([]int, bins)
	for _, c := range cps {
		i := int(float64(c.CommittedAt-t0) / max(width, 1))
		counts[min(i, bins-1)]++
	}
	hours := max(width, 1) / float64(time.Hour/time.Millisecond)
	peak := 0.0
	for _, n := range counts {
		peak = max(peak, float64(n)/hours)
	}
	thr := &chartView{Width: chartW, Height: chartH, Left: chartLeft, Bottom: chartH - chartBott, Right: chartW - chartRight, Top: chartTop,
		Title: "Commit rate over time (partitions per hour, per time bin)"}
	xt := func(t int64) float64 { return float64(chartLeft) + plotW*float64(t-t0)/float64(max(last-t0, 1)) }
	bw := plotW / float64(bins)
	for i, n := range counts {
		rate := float64(n) / hours
		h := plotH * rate / max(peak, 1e-9)
		from := t0 + int64(float64(i)*width)
		thr.Bars = append(thr.Bars, barView{X: float64(chartLeft) + float64(i)*bw + 1, Y: float64(chartTop) + plotH - h, W: max(bw-2, 1), H: h, Class: "rate",
			Title: fmt.Sprintf("%s – %s: %d partitions (%s)", fmtTime(time.UnixMilli(from)), fmtTime(time.UnixMilli(from+int64(width))), n, fmtRate(rate))})
	}
	unit := 1.0
	if peak >= 600 {
		unit = 60
		thr.Title = "Commit rate over time (partitions per minute, per time bin)"
	}
	for _, r := range []float64{0, peak / 2, peak} {
		yy := float64(chartTop) + plotH*(1-r/max(peak, 1e-9))
		thr.YLabels = append(thr.YLabels, labelView{X: chartLeft - 6, Y: int(yy) + 4, Text: fmt.Sprintf("%.1f", r/unit)})
		thr.Grid = append(thr.Grid, int(yy))
	}
	thr.YLabels[0].Text = "0"
	thr.XLabels = timeLabels(t0, last, xt)
	return cum, thr
}

func timeLabels(t0, t1 int64, x func(int64) float64) []labelView {
	layout := "Jan 02 15:04"
	if t1-t0 < int64(20*time.Hour/time.Millisecond) {
		layout = "15:04:05"
	}
	var out []labelView
	for i, t := range []int64{t0, t0 + (t1-t0)/2, t1} {
		l := labelView{X: int(x(t)), Y: chartH - 8, Text: time.UnixMilli(t).UTC().Format(layout)}
		if i == 0 {
			l.Text += " UTC"
		}
		out = append(out, l)
	}
	return out
}
