package main

import (
	"fmt"

	"github.com/apache/iceberg-go/table"
	"github.com/urfave/cli/v2"

	icecat "github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/source"
)

// openCatalog opens the catalog the flags name. Only run creates: every
// other command opens it read-only, so a wrong --catalog-db is an error
// naming the path instead of a new empty catalog.
func openCatalog(c *cli.Context, create bool) (*icecat.Catalog, error) {
	cfg := catalogConfig(c)
	cfg.ReadOnly = !create
	cat, err := icecat.Open(c.Context, cfg)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return cat, nil
}

// openTable opens the catalog and loads the table; the caller closes the
// catalog. A missing table is the user's to fix (exit 2), an unreachable
// catalog is not (exit 3).
func openTable(c *cli.Context) (*icecat.Catalog, *table.Table, error) {
	cat, err := openCatalog(c, false)
	if err != nil {
		return nil, nil, err
	}
	tbl, err := cat.LoadTable(c.Context)
	if err != nil {
		cat.Close()
		return nil, nil, err
	}
	return cat, tbl, nil
}

func openInputs(c *cli.Context, workers int) (*rewrite.Inputs, error) {
	src, err := source.Open(c.Context, c.String("source"), s3Options(c))
	if err != nil {
		return nil, err
	}
	opts := rewrite.InputOptions{AllowMissing: c.Bool("allow-missing"), Workers: workers}
	if err := memoryOptions(c, &opts); err != nil {
		return nil, err
	}
	if c.IsSet("max-read-rate") || c.String("max-read-rate") != "" {
		rate, err := rewrite.ParseByteRate(c.String("max-read-rate"))
		if err != nil {
			opts.SpillDir.Close()
			return nil, errkind.Usagef("--max-read-rate: %w", err)
		}
		if rate > 0 {
			lim := rewrite.NewRateLimiter(rate)
			opts.Read.Throttle = lim.Wait
		}
	}
	in, err := rewrite.NewInputs(c.Context, src, opts)
	if err != nil {
		opts.SpillDir.Close()
		return nil, err
	}
	return in, nil
}

func s3Options(c *cli.Context) objstore.S3Options { return catalogConfig(c).S3 }
