package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// fmtInt writes n with thin groups of three: 1,234,567.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtFloat(x float64) string {
	if math.Abs(x) >= 1000 || x == math.Trunc(x) {
		return fmtInt(int64(math.Round(x)))
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// fmtRel writes a relative difference as a signed percentage.
func fmtRel(x float64) string {
	switch {
	case isInfinite(x) && x > 0, math.IsInf(x, 1):
		return "+∞"
	case isInfinite(x), math.IsInf(x, -1):
		return "−∞"
	case x == 0:
		return "0%"
	}
	p := x * 100
	prec := 2
	if math.Abs(p) >= 10 {
		prec = 1
	}
	return strings.Replace(fmt.Sprintf("%+.*f%%", prec, p), "-", "−", 1)
}

func fmtPct(x float64) string {
	p := x * 100
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return "< 1s"
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// fmtRate writes a rate per hour in the most readable unit.
func fmtRate(perHour float64) string {
	switch {
	case perHour <= 0:
		return "—"
	case perHour >= 600:
		return fmt.Sprintf("%.1f / min", perHour/60)
	}
	return fmt.Sprintf("%.1f / h", perHour)
}
