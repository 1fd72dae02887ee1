package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/snapshots"
)

func rollbackCommand() *cli.Command {
	flags := append(append(catalogFlags(),
		&cli.StringFlag{Name: "to", Usage: "tag or snapshot id to return to (default: the tag of the last promotion); only snapshots main has been, unless --force"},
		&cli.BoolFlag{Name: "force", Usage: "restore promoted partitions even though later commits changed them again (those changes are discarded), or reset to a --to main has never been; recorded"},
		jsonFlag(),
	), notifyFlags()...)
	return &cli.Command{
		Name:      "rollback",
		Usage:     "put main back as it was before the last promotion, keeping later nightly commits",
		UsageText: "icefill rollback [--to TAG|SNAPSHOT] [--force]",
		Description: `If nothing was committed to main since the promotion, main is reset to the tagged
pre-promotion snapshot. If the nightly job committed since (new days), one new commit on
main restores the promoted partitions to their pre-promotion files and leaves every other
partition as it is now; if a later commit touched one of the promoted partitions, it
refuses and names them, unless --force. It restores exactly the partitions the
promotion recorded as changed. --to resets main to a snapshot main has been (its
history, an icefill tag); anything else is refused unless --force (recorded). Guarded
against concurrent change; recorded in the catalog; undone by promoting again.

Examples:
   icefill rollback
   icefill rollback --to pre-promote-clv-fix-20240601T123000Z-6767293944999826733

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			if err := checkNotify(c); err != nil {
				return err
			}
			cat, err := openCatalog(c, false)
			if err != nil {
				return err
			}
			defer cat.Close()
			ev, err := snapshots.Rollback(c.Context, cat.Iceberg(), cat.Ident(), snapshots.RollbackOptions{To: c.String("to"), Force: c.Bool("force")})
			if err != nil {
				return err
			}
			if err := printReport(c, newPublishReport(*ev, nil)); err != nil {
				return err
			}
			notify(c, "rollback", strings.Join(cat.Ident(), "."), *ev)
			return nil
		},
	}
}
