// Command rowdiff compares two refs of an icefill table row for row, through
// icefill's own canonical scan (validate.RefRows), and prints
//
//	rowdiff: REF_A rows=N partitions=P REF_B rows=N partitions=P rows-match=yes|no
//
// exiting 1 when they differ (with the first differing lines). make test-k8s
// uses it to hold the branch the Kubernetes Job wrote against a
// single-process run's. The catalog comes from the usual ICEFILL_* variables.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/validate"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: rowdiff REF_A REF_B   (catalog from ICEFILL_CATALOG_URI, ICEFILL_TABLE, ICEFILL_S3_*)")
		os.Exit(2)
	}
	ok, err := run(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "rowdiff:", err)
		os.Exit(3)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(refA, refB string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := catalog.DefaultConfig()
	cfg.URI = os.Getenv("ICEFILL_CATALOG_URI")
	if t := os.Getenv("ICEFILL_TABLE"); t != "" {
		cfg.Table = t
	}
	cfg.S3 = objstore.S3OptionsFromEnv()
	cat, err := catalog.Open(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx)
	if err != nil {
		return false, err
	}
	a, err := validate.RefRows(ctx, tbl, refA)
	if err != nil {
		return false, err
	}
	b, err := validate.RefRows(ctx, tbl, refB)
	if err != nil {
		return false, err
	}
	match := len(a) > 0 && strings.Join(a, "\n") == strings.Join(b, "\n")
	fmt.Printf("rowdiff: %s rows=%d partitions=%d %s rows=%d partitions=%d rows-match=%s\n",
		refA, len(a), partitions(a), refB, len(b), partitions(b), map[bool]string{true: "yes", false: "no"}[match])
	if !match {
		for i := 0; i < max(len(a), len(b)); i++ {
			if i >= len(a) || i >= len(b) || a[i] != b[i] {
				for j := i; j < min(i+3, max(len(a), len(b))); j++ {
					if j < len(a) {
						fmt.Printf("  %s: %s\n", refA, a[j])
					}
					if j < len(b) {
						fmt.Printf("  %s: %s\n", refB, b[j])
					}
				}
				break
			}
		}
	}
	return match, nil
}

// partitions counts the distinct values of the first column, the partition day.
func partitions(lines []string) int {
	days := map[string]bool{}
	for _, l := range lines {
		d, _, _ := strings.Cut(l, " ")
		days[d] = true
	}
	return len(days)
}
