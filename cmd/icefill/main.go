// Command icefill recomputes years of daily partitions of an Iceberg table
// onto a branch, resumes after any crash, validates the result, publishes
// it atomically and can undo the publication.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "icefill:", err)
	}
	os.Exit(exitCode(err))
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "icefill",
		Usage: "safe, resumable historical backfills of Apache Iceberg tables",
		Description: `icefill recomputes the daily partitions of the clv_daily table from raw events,
one partition per commit onto an Iceberg branch, so that readers of main see nothing
until the result is validated and promoted.

Start here:
   icefill gen-events --out ./events --from 2024-01-01 --to 2024-03-31
   icefill compute --source ./events --date 2024-03-01

` + exitCodesHelp,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json", EnvVars: []string{"ICEFILL_LOG_FORMAT"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"ICEFILL_LOG_LEVEL"}},
		},
		Before: func(c *cli.Context) error {
			return setupLogging(c.String("log-format"), c.String("log-level"), stderr)
		},
		Commands: []*cli.Command{
			genEventsCommand(),
			computeCommand(),
			benchCommand(),
			planCommand(),
			runCommand(),
			statusCommand(),
			gcCommand(),
			totalsCommand(),
			validateCommand(),
			promoteCommand(),
			rollbackCommand(),
			historyCommand(),
			reportCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main decides the exit code
		OnUsageError:   usageError,
	}
	for _, cmd := range app.Commands {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = usageError
		}
	}
	return app
}

func setupLogging(format, level string, w io.Writer) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return usageErr("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return usageErr("--log-format %q: want text or json", format)
	}
	slog.SetDefault(slog.New(h))
	return nil
}

// logger is the process logger set up by the app's Before hook.
func logger() *slog.Logger { return slog.Default() }
