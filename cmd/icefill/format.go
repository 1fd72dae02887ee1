package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/icefill/icefill/rewrite"
)

// money prints cents as a currency amount with thousands separators.
func money(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	whole := fmt.Sprint(cents / 100)
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	s := fmt.Sprintf("%s.%02d", b.String(), cents%100)
	if neg {
		s = "-" + s
	}
	return s
}

// formatETA rounds a remaining time for people: seconds under a minute,
// minutes under a day, hours beyond.
func formatETA(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 24*time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Hour).String()
}

// shortList joins at most max items, saying how many more there are.
func shortList(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}

// warnMissing names, one warning per day, the source days a plan counts
// as empty (--allow-missing).
func warnMissing(plan *rewrite.Plan) {
	for _, d := range plan.MissingPartitions {
		logger().Warn("source day missing; its partition counts it as empty (--allow-missing)", "day", d.String())
	}
	for _, d := range plan.MissingLookback {
		logger().Warn("lookback source day missing; counted as empty (--allow-missing)", "day", d.String())
	}
}
