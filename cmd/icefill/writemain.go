package main

import (
	"fmt"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/urfave/cli/v2"

	icecat "github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/snapshots"
)

func writeMainFlag() cli.Flag {
	return &cli.BoolFlag{Name: "write-main", Usage: "allow --branch main: write production main directly (main's head is tagged first and the write recorded in `icefill history`)"}
}

// checkBranchFlag keeps branch names that could escape a path or clash
// with icefill's refs from reaching anything (exit 2).
func checkBranchFlag(_ *cli.Context, name string) error { return snapshots.CheckBranchName(name) }

// guardWriteMain refuses `run --branch main` without --write-main (exit 4):
// production main is written only on purpose.
func guardWriteMain(c *cli.Context) error {
	onMain := c.String("branch") == table.MainBranch
	switch {
	case onMain && !c.Bool("write-main"):
		return errkind.Refusedf("--branch main writes production main directly, bypassing validation and promotion; " +
			"pass --write-main to do it on purpose (main's head is tagged first and the write recorded), or write a branch and promote it")
	case !onMain && c.Bool("write-main"):
		return errkind.Usagef("--write-main goes with --branch main only")
	}
	return nil
}

// beginWriteMain tags main and records the write before a run on main; the
// returned function completes the record.
func beginWriteMain(c *cli.Context, cat *icecat.Catalog, runID string) (func(), error) {
	if c.String("branch") != table.MainBranch {
		return func() {}, nil
	}
	if _, _, err := cat.EnsureTable(c.Context); err != nil {
		return nil, err
	}
	ev, err := snapshots.BeginMainWrite(c.Context, cat.Iceberg(), cat.Ident(), runID, time.Now())
	if err != nil {
		return nil, err
	}
	if ev.Tag != "" {
		fmt.Fprintf(c.App.ErrWriter, "writing main directly: its head %d is kept as tag %s (undo with: icefill rollback --to %s)\n", ev.From, ev.Tag, ev.Tag)
	}
	return func() { snapshots.FinishMainWrite(c.Context, cat.Iceberg(), cat.Ident(), ev) }, nil
}
