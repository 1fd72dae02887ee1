package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/snapshots"
)

// checkNotify rejects a malformed --webhook before anything is published:
// afterwards the change could not be undone by fixing the flag.
func checkNotify(c *cli.Context) error {
	raw := c.String("webhook")
	if raw == "" {
		return nil
	}
	u, err := neturl.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errkind.Usagef("--webhook %q: want an http:// or https:// URL with a host", raw)
	}
	return nil
}

func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "notify-cmd", Usage: "shell command run after success, with ICEFILL_EVENT (JSON), ICEFILL_KIND, ICEFILL_TABLE, ICEFILL_FROM_SNAPSHOT, ICEFILL_TO_SNAPSHOT in its environment", EnvVars: []string{"ICEFILL_NOTIFY_CMD"}},
		&cli.StringFlag{Name: "webhook", Usage: "URL that receives the event as a JSON POST after success", EnvVars: []string{"ICEFILL_WEBHOOK"}},
	}
}

// notify tells downstream consumers; a failure is reported, not fatal: the
// change itself is already published.
func notify(c *cli.Context, kind, tableName string, ev snapshots.Event) {
	payload, _ := json.Marshal(struct {
		Kind  string          `json:"kind"`
		Table string          `json:"table"`
		Event snapshots.Event `json:"event"`
	}{kind, tableName, ev})
	if cmdline := c.String("notify-cmd"); cmdline != "" {
		cmd := exec.CommandContext(c.Context, "sh", "-c", cmdline)
		cmd.Env = append(os.Environ(), "ICEFILL_EVENT="+string(payload), "ICEFILL_KIND="+kind, "ICEFILL_TABLE="+tableName,
			fmt.Sprintf("ICEFILL_FROM_SNAPSHOT=%d", ev.From), fmt.Sprintf("ICEFILL_TO_SNAPSHOT=%d", ev.To))
		cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
		if c.Bool("json") {
			cmd.Stdout = c.App.ErrWriter // standard output holds the one JSON document
		}
		if err := cmd.Run(); err != nil {
			logger().Warn("notify command failed; the change itself is published", "err", err)
		}
	}
	if url := c.String("webhook"); url != "" {
		ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		var resp *http.Response
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			resp, err = http.DefaultClient.Do(req)
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
		if err != nil {
			logger().Warn("webhook failed; the change itself is published", "err", err)
		}
	}
}
