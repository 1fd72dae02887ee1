package catalog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fastPolicy retries quickly and logs into the returned buffer.
func fastPolicy(retries int) (retryPolicy, *syncBuffer) {
	buf := &syncBuffer{}
	lg := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return retryPolicy{
		Retries:       retries,
		WaitMin:       time.Millisecond,
		WaitMax:       5 * time.Millisecond,
		MaxRetryAfter: 3 * time.Second,
		Logger:        func() *slog.Logger { return lg },
	}, buf
}

func testClient(t *testing.T, pol retryPolicy) *http.Client {
	t.Helper()
	tr, err := newRESTTransport(Config{}, pol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	// Like iceberg-go, an ordinary client on top of our transport.
	return &http.Client{Transport: tr}
}

const secretHeader = "Bearer sup3r-s3cret-t0ken"

func doReq(t *testing.T, cl *http.Client, ctx context.Context, method, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", secretHeader)
	resp, err := cl.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestTransportStatusRetries(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		statuses  []int // answer i of the server; the last one repeats
		retries   int
		wantCode  int
		wantCalls int
	}{
		{"GET retried on 503 then succeeds", "GET", []int{503, 200}, 5, 200, 2},
		{"GET retried on 502 and 504", "GET", []int{502, 504, 200}, 5, 200, 3},
		{"GET retried on 429", "GET", []int{429, 200}, 5, 200, 2},
		{"HEAD retried on 503", "HEAD", []int{503, 204}, 5, 204, 2},
		{"GET not retried on 500", "GET", []int{500, 200}, 5, 500, 1},
		{"GET not retried on 404", "GET", []int{404, 200}, 5, 404, 1},
		{"GET gives up after the retries, final response passed through", "GET", []int{503}, 2, 503, 3},
		{"POST not retried on 500", "POST", []int{500, 200}, 5, 500, 1},
		{"POST not retried on 503", "POST", []int{503, 200}, 5, 503, 1},
		{"POST not retried on 502", "POST", []int{502, 200}, 5, 502, 1},
		{"POST not retried on 504", "POST", []int{504, 200}, 5, 504, 1},
		{"POST not retried on 409", "POST", []int{409, 200}, 5, 409, 1},
		{"POST retried on 429", "POST", []int{429, 429, 200}, 5, 200, 3},
		{"DELETE not retried on 503", "DELETE", []int{503, 204}, 5, 503, 1},
		{"zero retries", "GET", []int{503, 200}, 0, 503, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const body = `{"updates":[{"action":"set-properties"}]}`
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				got, _ := io.ReadAll(r.Body)
				if r.Method == "POST" && string(got) != body {
					t.Errorf("attempt %d: body %q, want %q (not replayed?)", n, got, body)
				}
				code := tc.statuses[min(n, len(tc.statuses))-1]
				w.WriteHeader(code)
			}))
			defer srv.Close()
			pol, logs := fastPolicy(tc.retries)
			resp, err := doReq(t, testClient(t, pol), context.Background(), tc.method, srv.URL+"/v1/namespaces/a/tables/b", body)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if got := int(calls.Load()); got != tc.wantCalls {
				t.Errorf("server saw %d requests, want %d", got, tc.wantCalls)
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Errorf("logs contain the authorization header: %s", logs)
			}
			if tc.wantCalls > 1 && !strings.Contains(logs.String(), "retrying") {
				t.Errorf("retries were not logged: %q", logs)
			}
		})
	}
}

func TestTransportRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		status     int
		retryAfter string
		maxAfter   time.Duration
		minElapsed time.Duration
		maxElapsed time.Duration
	}{
		{"503 Retry-After seconds honoured", "GET", 503, "1", 3 * time.Second, 900 * time.Millisecond, 2500 * time.Millisecond},
		{"429 Retry-After on POST honoured", "POST", 429, "1", 3 * time.Second, 900 * time.Millisecond, 2500 * time.Millisecond},
		{"Retry-After HTTP date honoured", "GET", 503, "date+2s", 5 * time.Second, 900 * time.Millisecond, 3500 * time.Millisecond},
		{"Retry-After capped", "GET", 429, "3600", 50 * time.Millisecond, 40 * time.Millisecond, 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					ra := tc.retryAfter
					if ra == "date+2s" {
						ra = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
					}
					w.Header().Set("Retry-After", ra)
					w.WriteHeader(tc.status)
					return
				}
				w.WriteHeader(200)
			}))
			defer srv.Close()
			pol, _ := fastPolicy(3)
			pol.MaxRetryAfter = tc.maxAfter
			start := time.Now()
			resp, err := doReq(t, testClient(t, pol), context.Background(), tc.method, srv.URL+"/v1/config", "{}")
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || calls.Load() != 2 {
				t.Fatalf("status %d after %d calls, want 200 after 2", resp.StatusCode, calls.Load())
			}
			if elapsed < tc.minElapsed || elapsed > tc.maxElapsed {
				t.Errorf("took %v, want between %v and %v", elapsed, tc.minElapsed, tc.maxElapsed)
			}
		})
	}
}

// closedAddr returns the address of a port nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTransportConnectionErrors(t *testing.T) {
	// A server that reads the request, then drops the connection without
	// answering: the request may have been processed.
	var dropCalls atomic.Int32
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dropCalls.Add(1)
		io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	defer dropper.Close()
	// A server that rate-limits the first attempt, then drops the connection.
	var rlCalls atomic.Int32
	rateThenDrop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rlCalls.Add(1) == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	defer rateThenDrop.Close()
	refused := "http://" + closedAddr(t)

	tests := []struct {
		name       string
		method     string
		url        string
		wantCalls  int32 // -1: not counted
		wantErrHas []string
	}{
		{"GET to a closed port retried, then a clear error", "GET", refused, -1,
			[]string{"connection refused", "gave up after 3 attempts"}},
		{"POST to a closed port retried: it was never sent", "POST", refused, -1,
			[]string{"connection refused", "gave up after 3 attempts"}},
		{"POST whose response is lost is not retried", "POST", dropper.URL, 1,
			[]string{"not retried: the request may have reached the server"}},
		{"GET whose response is lost is retried", "GET", dropper.URL, 3,
			[]string{"gave up after 3 attempts"}},
		{"POST retried after 429, not after a lost response", "POST", rateThenDrop.URL, -1,
			[]string{"not retried: the request may have reached the server"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dropCalls.Store(0)
			pol, logs := fastPolicy(2)
			_, err := doReq(t, testClient(t, pol), context.Background(), tc.method, tc.url+"/v1/namespaces/a/tables/b", "{}")
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.wantErrHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(logs.String(), "s3cret") {
				t.Errorf("secret leaked: %v / %s", err, logs)
			}
			if tc.wantCalls >= 0 && dropCalls.Load() != tc.wantCalls {
				t.Errorf("server saw %d requests, want %d", dropCalls.Load(), tc.wantCalls)
			}
			if tc.url == rateThenDrop.URL && rlCalls.Load() != 2 {
				t.Errorf("rate-limiting server saw %d requests, want 2", rlCalls.Load())
			}
		})
	}
}

func TestTransportContextCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(503)
	}))
	defer srv.Close()
	pol, _ := fastPolicy(5)
	pol.MaxRetryAfter = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := doReq(t, testClient(t, pol), ctx, "GET", srv.URL+"/v1/config", "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancellation took %v", d)
	}
}

func TestBackoff(t *testing.T) {
	pol, _ := fastPolicy(5)
	for attempt := 0; attempt < 10; attempt++ {
		d := pol.backoff(100*time.Millisecond, time.Second, attempt, nil)
		want := 100 * time.Millisecond << attempt
		if want > time.Second {
			want = time.Second
		}
		if d < want/2 || d > want {
			t.Errorf("attempt %d: wait %v, want within [%v, %v]", attempt, d, want/2, want)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"2", 2 * time.Second, true}, {"0", 0, true}, {"-1", 0, false}, {"soon", 0, false}, {"", 0, false}} {
		d, ok := parseRetryAfter(tc.in)
		if d != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
	if d, ok := parseRetryAfter(time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)); !ok || d != 0 {
		t.Errorf("past date: %v %v", d, ok)
	}
}
