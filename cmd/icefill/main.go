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

	"github.com/icefill/icefill/internal/errkind"
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
	global := map[string]string{} // the global flags' values, for acceptLogFlags
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
		Writer:               stdout,
		ErrWriter:            stderr,
		Version:              versionString(),
		EnableBashCompletion: true,
		Flags:                logFlags(),
		Before: func(c *cli.Context) error {
			global["log-format"], global["log-level"] = c.String("log-format"), c.String("log-level")
			return setupLogging(global["log-format"], global["log-level"], stderr)
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
			versionCommand(),
			completionCommand(),
		},
		// Without a command, print the help; an unknown one is a usage
		// error (urfave/cli's own answer is "No help topic", exit 3).
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return errkind.Usagef("unknown command %q; 'icefill help' lists the commands", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main decides the exit code
		OnUsageError:   usageError,
	}
	for _, cmd := range app.Commands {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = usageError
		}
		acceptLogFlags(cmd, global, stderr)
	}
	return app
}

// logFlags are the global flags. Every command accepts them too, so that
// `icefill run --log-level debug …` works as well as `icefill --log-level
// debug run …`.
func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json", EnvVars: []string{"ICEFILL_LOG_FORMAT"}, Category: catGlobal},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"ICEFILL_LOG_LEVEL"}, Category: catGlobal},
	}
}

const catGlobal = "Global"

// acceptLogFlags adds the global flags to cmd; given after the command (or
// by the --config file), they set up logging again before it runs.
func acceptLogFlags(cmd *cli.Command, global map[string]string, stderr io.Writer) {
	cmd.Flags = append(cmd.Flags, logFlags()...)
	before := cmd.Before
	cmd.Before = func(c *cli.Context) error {
		if before != nil {
			if err := before(c); err != nil {
				return err
			}
		}
		local := map[string]bool{}
		for _, n := range c.LocalFlagNames() {
			local[n] = true
		}
		if !local["log-format"] && !local["log-level"] {
			return nil // the app's Before set it up
		}
		value := func(name string) string {
			if local[name] {
				return c.String(name)
			}
			return global[name]
		}
		return setupLogging(value("log-format"), value("log-level"), stderr)
	}
}

// The logging set up last, for logTo.
var logFormat, logLevel = "text", "info"

// logTo sends the process's logs to w with the current format and level.
func logTo(w io.Writer) { setupLogging(logFormat, logLevel, w) }

func setupLogging(format, level string, w io.Writer) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return errkind.Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return errkind.Usagef("--log-format %q: want text or json", format)
	}
	slog.SetDefault(slog.New(h))
	logFormat, logLevel = format, level
	return nil
}

// logger is the process logger set up by the app's Before hook.
func logger() *slog.Logger { return slog.Default() }
