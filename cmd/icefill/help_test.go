package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpIsConsistent: every command's --help has an example and the exit
// codes, and no flag states its default twice.
func TestHelpIsConsistent(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, cmd := range app.Commands {
		if cmd.Hidden || cmd.Name == "help" {
			continue
		}
		var out bytes.Buffer
		a := newApp(&out, &out)
		if err := a.RunContext(context.Background(), []string{"icefill", cmd.Name, "--help"}); err != nil {
			t.Fatalf("%s --help: %v", cmd.Name, err)
		}
		help := out.String()
		if !strings.Contains(help, "Example") {
			t.Errorf("%s --help has no example", cmd.Name)
		}
		if !strings.Contains(help, "EXIT CODES") {
			t.Errorf("%s --help does not list the exit codes", cmd.Name)
		}
		for _, line := range strings.Split(help, "\n") {
			if strings.Count(line, "default") > 1 {
				t.Errorf("%s --help states a default twice: %s", cmd.Name, strings.TrimSpace(line))
			}
			if cmd.Name != "run" && strings.HasPrefix(strings.TrimSpace(line), "--branch") && strings.Contains(line, "to write") {
				t.Errorf("%s --help describes --branch as the branch to write: %s", cmd.Name, strings.TrimSpace(line))
			}
		}
	}
}
