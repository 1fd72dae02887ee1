package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/synth"
)

// findChromium returns the browser the report test drives: $ICEFILL_CHROMIUM,
// else Debian's chromium (`apt-get install chromium`, as .ci/run does).
func findChromium() string {
	if p := os.Getenv("ICEFILL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestReportInBrowser makes a real history with the binary (a promotion,
// a partition whose input changed, a partition that fails, partitions left
// to do, a failing validation), writes the report page and loads it in
// headless Chromium: the calendar must have one square per planned
// partition in the right state, the validation must show the failing
// metric, the history the promotion. The screenshot is kept in the test's
// artifact directory (go test -artifacts).
func TestReportInBrowser(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		t.Skip("Chromium not found: install Debian's chromium (apt-get install -y chromium, as .ci/run and `make browser-deps` do) or set ICEFILL_CHROMIUM")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "events")
	st, _ := objstore.NewLocal(src)
	from, to := features.MustParseDate("2024-05-01"), features.MustParseDate("2024-05-12")
	if _, err := synth.Generate(context.Background(), st, synth.Config{From: from - 10, To: to, EventsPerDay: 1000, Seed: 3, V2From: from + 3, Customers: 300}, nil); err != nil {
		t.Fatal(err)
	}
	expected, _ := filepath.Abs("../../docs/expected-clv-fix.yaml")
	must := func(want int, args ...string) string {
		t.Helper()
		code, _, out := icefill(t, dir, nil, 0, args...)
		if code != want {
			t.Fatalf("icefill %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return out
	}
	run := func(branch, logic, last string) []string {
		return []string{"run", "--source", src, "--from", from.String(), "--to", last, "--branch", branch, "--logic", logic, "--max-reject-rate", "0.05", "--workers", "1"}
	}
	must(0, append(run("main", "legacy", to.String()), "--order", "oldest-first", "--write-main")...)
	must(0, run("clv-fix", "corrected", "2024-05-09")...)
	must(0, "validate", "--base", "main", "--candidate", "clv-fix", "--expected", expected)
	out := must(0, "promote", "--branch", "clv-fix")
	tag := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "pre-promote-clv-fix-") {
			tag = strings.TrimSuffix(f, ";")
		}
	}
	if tag == "" {
		t.Fatalf("no tag in promote's output:\n%s", out)
	}
	// 05-09's input changes (a new modification time); 05-12's files are
	// not Parquet. The wider run fails 05-12 (newest first) and is killed
	// before committing 05-11: 05-10 and 05-11 stay to do.
	day := func(d string) string { return filepath.Join(src, "dt="+d) }
	files, _ := filepath.Glob(filepath.Join(day("2024-05-09"), "*"))
	for _, f := range files {
		os.Chtimes(f, time.Now(), time.Now().Add(time.Hour))
	}
	files, _ = filepath.Glob(filepath.Join(day("2024-05-12"), "*"))
	for _, f := range files {
		os.WriteFile(f, []byte("not parquet"), 0o644)
	}
	if code, killed, out := icefill(t, dir, []string{"ICEFILL_FAULT=before-commit:1"}, 0, run("clv-fix", "corrected", to.String())...); !killed {
		t.Fatalf("the run was to be killed at its first commit; exit %d\n%s", code, out)
	}
	valHTML := filepath.Join(dir, "validation.html")
	must(1, "validate", "--base", tag, "--candidate", "clv-fix", "--html", valHTML)
	// A branch with nothing planned still gets a page, saying so.
	emptyHTML := filepath.Join(dir, "empty.html")
	must(0, "report", "--branch", "nothing-yet", "--html", emptyHTML)
	if b, err := os.ReadFile(emptyHTML); err != nil || !strings.Contains(string(b), `id="no-plan"`) || strings.Contains(string(b), `class="cell `) {
		t.Errorf("page of an empty branch (err %v) lacks the no-plan note or has squares", err)
	}
	pageHTML := filepath.Join(dir, "report.html")
	if out := must(0, "report", "--branch", "clv-fix", "--html", pageHTML); strings.TrimSpace(out) != pageHTML {
		t.Errorf("report printed %q, want the page's path", out)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")), chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	type cell struct {
		Day, State, Title, Fill string
		Width                   float64
	}
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("chromium (%s): %s: %v", chromium, what, err)
		}
	}
	step("load the report", chromedp.Do(ctx, chromedp.Navigate("file://"+pageHTML), chromedp.WaitVisible("#partitions svg.calendar")))
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]cell](`Array.from(document.querySelectorAll("svg.calendar rect.cell")).map(r => ({
		Day: r.dataset.day, State: r.dataset.state, Title: r.querySelector("title").textContent,
		Fill: getComputedStyle(r).fill, Width: r.getBoundingClientRect().width}))`))
	step("read the calendar", err)
	verdict, err := chromedp.Run(ctx, chromedp.Text("#verdict"))
	step("read the verdict", err)
	failedChecks, err := chromedp.Run(ctx, chromedp.Text("table.failed-checks"))
	step("read the failed checks", err)
	failingCharts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("svg.mini[data-status=fail]")).map(s => s.dataset.metric + "/" + s.dataset.dimension).join(" ")`))
	step("read the metric charts", err)
	history, err := chromedp.Run(ctx, chromedp.Text("#history"))
	step("read the history", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot", err)
	artifacts := t.ArtifactDir()
	if err := os.WriteFile(filepath.Join(artifacts, "report.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", filepath.Join(artifacts, "report.png"), len(shot))

	want := map[string]string{"2024-05-09": "source-changed", "2024-05-10": "todo", "2024-05-11": "todo", "2024-05-12": "failed"}
	for d := from; d <= features.MustParseDate("2024-05-08"); d++ {
		want[d.String()] = "done"
	}
	if len(cells) != len(want) {
		t.Fatalf("calendar has %d squares, want one per planned partition (%d): %+v", len(cells), len(want), cells)
	}
	for _, c := range cells {
		if want[c.Day] != c.State {
			t.Errorf("square %s: state %q, want %q", c.Day, c.State, want[c.Day])
		}
		if c.Width < 8 {
			t.Errorf("square %s is %.1f px wide: not visible", c.Day, c.Width)
		}
		if c.State == "done" && c.Fill != "rgb(0, 114, 178)" {
			t.Errorf("done square %s is filled %q, want the legend's blue", c.Day, c.Fill)
		}
		if c.State == "failed" && !strings.Contains(c.Title, "not readable Parquet") {
			t.Errorf("failed square's hover text %q lacks the error", c.Title)
		}
	}
	if strings.TrimSpace(verdict) != "FAIL" {
		t.Errorf("validation verdict %q, want FAIL", verdict)
	}
	if !strings.Contains(failedChecks, "net_revenue_cents") || !strings.Contains(failingCharts, "net_revenue_cents/") {
		t.Errorf("the failing metric net_revenue_cents is not shown: checks %q, failing charts %q", failedChecks, failingCharts)
	}
	if !strings.Contains(history, "clv-fix published onto main") || !strings.Contains(history, tag) {
		t.Errorf("history lacks the promotion and its tag %s: %q", tag, history)
	}

	// validate --html: the validation alone, with the same verdict.
	step("load the validation page", chromedp.Do(ctx, chromedp.Navigate("file://"+valHTML)))
	valVerdict, err := chromedp.Run(ctx, chromedp.Text("#verdict"))
	step("read its verdict", err)
	valMetrics, err := chromedp.Run(ctx, chromedp.Text("#metrics"))
	step("read its metrics", err)
	if strings.TrimSpace(valVerdict) != "FAIL" || !strings.Contains(valMetrics, "net_revenue_cents") {
		t.Errorf("validation page: verdict %q, metrics %q", valVerdict, valMetrics)
	}
}
