//go:build integration

package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sparkServer is one read_spark.py --serve process: one Spark session that
// reads refs on request, so a test can read main after each promotion and
// rollback without starting Spark each time. It is also the stronger check: a
// reader that keeps running must pick up the new snapshot of main by itself.
// It ends when the test ends (its stdin is closed; if this process dies, the
// closed pipe ends it too).
type sparkServer struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	answers chan string
	stderr  *lockedBuffer
	dead    chan struct{}
}

const sparkServeMarker = "ICEFILL-SPARK-SERVE "

// sparkReadLimit bounds one request (and the session start).
const sparkReadLimit = 5 * time.Minute

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type sparkAnswer struct {
	OK      bool     `json:"ok"`
	Ready   bool     `json:"ready"`
	Summary []string `json:"summary"`
	Error   string   `json:"error"`
}

func startSparkServer(t *testing.T, cat readerArgs, env []string, table string) *sparkServer {
	t.Helper()
	t0 := time.Now()
	args := append([]string{filepath.Join(readers, "read_spark.py")}, cat...)
	args = append(args, "--table", table, "--serve", "--jars", filepath.Join(cache, "spark-jars"))
	cmd := exec.Command(python, args...)
	cmd.Env = env
	s := &sparkServer{cmd: cmd, answers: make(chan string, 4), stderr: &lockedBuffer{}, dead: make(chan struct{})}
	cmd.Stderr = s.stderr
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the Spark reader: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), sparkServeMarker); ok {
				s.answers <- line
			}
		}
		_ = cmd.Wait()
		close(s.dead)
	}()
	t.Cleanup(s.stop)
	a := s.await(t)
	if !a.Ready {
		t.Fatalf("Spark reader: unexpected first answer %+v", a)
	}
	t.Logf("spark reader session started in %.1fs", time.Since(t0).Seconds())
	return s
}

// stop closes stdin (the reader stops its session and exits) and kills it if
// it has not ended a minute later.
func (s *sparkServer) stop() {
	s.stdin.Close()
	select {
	case <-s.dead:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.dead
	}
}

func (s *sparkServer) await(t *testing.T) sparkAnswer {
	t.Helper()
	select {
	case line := <-s.answers:
		var a sparkAnswer
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("Spark reader: bad answer %q: %v", line, err)
		}
		if !a.OK {
			t.Fatalf("Spark reader: %s\n%s", a.Error, tail(s.stderr.String(), 40))
		}
		return a
	case <-s.dead:
		t.Fatalf("Spark reader died:\n%s", tail(s.stderr.String(), 60))
	case <-time.After(sparkReadLimit):
		_ = s.cmd.Process.Kill()
		t.Fatalf("Spark reader did not answer within %s:\n%s", sparkReadLimit, tail(s.stderr.String(), 60))
	}
	return sparkAnswer{}
}

// read returns each ref's canonical lines as Spark reads them now.
func (s *sparkServer) read(t *testing.T, refs ...string) map[string][]string {
	t.Helper()
	dir := t.TempDir()
	req, _ := json.Marshal(map[string]any{"refs": refs, "out_dir": dir})
	t0 := time.Now()
	if _, err := s.stdin.Write(append(req, '\n')); err != nil {
		t.Fatalf("Spark reader: %v\n%s", err, tail(s.stderr.String(), 60))
	}
	a := s.await(t)
	t.Logf("spark reader (%.1fs):\n%s", time.Since(t0).Seconds(), indent(strings.Join(a.Summary, "\n")))
	out := map[string][]string{}
	for _, r := range refs {
		lines, err := readLines(filepath.Join(dir, r+".rows"))
		if err != nil {
			t.Fatalf("spark reader: %v", err)
		}
		out[r] = lines
	}
	return out
}
