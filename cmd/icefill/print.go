package main

import (
	"encoding/json"
	"io"

	"github.com/urfave/cli/v2"
)

// A printable is what a command reports. The same value gives the text for
// people and, with --json, one JSON document for scripts (restic's
// internal/ui does the same). Reports are built by a constructor that
// makes every slice non-nil, so JSON arrays are [] and never null, and
// their fields carry no omitempty: a documented field is always there.
type printable interface {
	writeText(w io.Writer) error
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the report as one JSON document instead of text"}
}

// printReport writes r to the command's standard output as text, or as
// JSON with --json.
func printReport(c *cli.Context, r printable) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, r)
	}
	return r.writeText(c.App.Writer)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// days formats dates (or anything with String) as a non-nil list.
func days[T interface{ String() string }](ds []T) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// orEmpty returns s, or an empty non-nil slice.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
