//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultProxy is an HTTP reverse proxy on 127.0.0.1 between icefill and one
// upstream server (the REST catalog or S3) that injects faults: error answers
// before forwarding, delays, connections closed without an answer, and lost
// answers (the request is forwarded and processed, then the client gets a 503
// or a closed connection instead of the server's answer).
//
// Injection is bounded: at most policy.MaxFaults faults, and none after
// policy.Window from the first request; after that, and after passthrough(),
// every request is forwarded untouched. Decisions come from forced ordinals
// (deterministic) and a seeded random source (deterministic for a given
// arrival order of requests).
//
// The Host header is forwarded as the client sent it, so AWS SigV4 signatures
// (which cover Host) stay valid when S3 goes through the proxy.
type faultProxy struct {
	name   string
	URL    string // http://127.0.0.1:PORT
	target *url.URL
	pol    faultPolicy
	srv    *http.Server
	rp     *httputil.ReverseProxy

	mu          sync.Mutex
	rng         *rand.Rand
	start       time.Time // first request
	off         bool      // passthrough() was called
	requests    int
	faults      int
	commits     int // commit POSTs seen (REST)
	partCommits int // of which partition commits (they carry icefill.attempt)
	ordinals    map[string]int
	counts      map[faultKind]int
	byClass     map[string]int // requests per class, e.g. "PUT", "GET", "commit"
	events      []faultEvent
}

type faultKind string

const (
	fault500      faultKind = "500 before forwarding"
	fault503      faultKind = "503 before forwarding"
	faultDrop     faultKind = "connection closed before forwarding"
	faultDelay    faultKind = "delay, then forwarded"
	faultLost503  faultKind = "forwarded, answer replaced by 503"
	faultLostDrop faultKind = "forwarded, connection closed instead of the answer"
)

func (k faultKind) lost() bool { return k == faultLost503 || k == faultLostDrop }

// short is the kind's label in one-line summaries.
func (k faultKind) short() string {
	return map[faultKind]string{fault500: "500", fault503: "503", faultDrop: "drop", faultDelay: "delay",
		faultLost503: "lost-answer-503", faultLostDrop: "lost-answer-drop"}[k]
}

// faultPolicy says which requests get which faults.
type faultPolicy struct {
	Seed uint64
	// Classify names a request's class; "" means never fault it. Forced and
	// Rate are keyed by class. The REST catalog's commit POSTs are class
	// "partition-commit" (a partition's data commit: its body carries
	// icefill.attempt) or "commit" (state, branch and retention commits).
	Classify func(r *http.Request, body []byte) string
	// Forced: class -> ordinal of the request within its class (1-based) ->
	// fault. Forced faults count towards MaxFaults but ignore Rate.
	Forced map[string]map[int]faultKind
	// Rate: class -> probability of a random fault, and the kinds to draw from.
	Rate  map[string]float64
	Kinds map[string][]faultKind
	// MaxDelay bounds injected delays (drawn uniformly from MaxDelay/10 to
	// MaxDelay; at least 100ms).
	MaxDelay time.Duration
	// MaxFaults and Window bound the injection in count and time. Rules
	// have their own bounds (Max) but stop with Window and passthrough too.
	MaxFaults int
	Window    time.Duration
	// Rules come first: targeted faults on the requests they match, for
	// scenarios that need a precise timing (see TestFaultInjection's
	// shared-day subtest).
	Rules []*faultRule
	// S3 makes error answers S3 XML errors instead of REST catalog JSON ones.
	S3 bool
}

// faultRule injects Kind (with Delay for faultDelay) on the first Max
// requests Match accepts.
type faultRule struct {
	Name  string
	Match func(r *http.Request) bool
	Kind  faultKind
	Delay time.Duration
	Max   int
	n     int
}

// faultEvent is one injected fault.
type faultEvent struct {
	At       time.Duration // since the first request
	Kind     faultKind
	Class    string
	Method   string
	Path     string
	Upstream int // for lost answers: the status the server answered (0: none)
}

type faultCtxKey struct{}

type faultDecision struct {
	kind  faultKind
	class string
	delay time.Duration // for faultDelay; 0: drawn at random
	ev    int           // index in events
}

// errLostAnswer makes the ReverseProxy hand a processed request to the
// ErrorHandler, which loses the answer as decided.
var errLostAnswer = errors.New("faultproxy: answer dropped on purpose")

// startFaultProxy listens on a free loopback port and forwards to upstream
// (http://127.0.0.1:PORT). It is closed when the test ends.
func startFaultProxy(t *testing.T, name, upstream string, pol faultPolicy) *faultProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("fault proxy %s: upstream %q: %v", name, upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault proxy %s: listen: %v", name, err)
	}
	p := &faultProxy{
		name: name, URL: "http://" + ln.Addr().String(), target: target, pol: pol,
		rng:      rand.New(rand.NewPCG(pol.Seed, 0x1cef111)),
		ordinals: map[string]int{}, counts: map[faultKind]int{}, byClass: map[string]int{},
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // SigV4 signs Host: keep the client's
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: 3 * time.Minute,
			DisableCompression:    true,
		},
		ModifyResponse: func(resp *http.Response) error {
			d, _ := resp.Request.Context().Value(faultCtxKey{}).(*faultDecision)
			if d == nil || !d.kind.lost() {
				return nil
			}
			// The server has processed the request and answered: read the
			// answer completely, then lose it.
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			p.mu.Lock()
			p.events[d.ev].Upstream = resp.StatusCode
			p.mu.Unlock()
			return errLostAnswer
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			d, _ := r.Context().Value(faultCtxKey{}).(*faultDecision)
			if errors.Is(err, errLostAnswer) && d != nil {
				if d.kind == faultLostDrop {
					p.drop(w)
				} else {
					p.errorAnswer(w, r, http.StatusServiceUnavailable)
				}
				return
			}
			// A real upstream failure: a gateway error, as a proxy would.
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	go p.srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() {
		p.srv.Close()
		p.rp.Transport.(*http.Transport).CloseIdleConnections()
	})
	t.Logf("fault proxy %s on %s -> %s (seed %d, at most %d random/forced faults and %d targeted rules, within %s)",
		name, p.URL, upstream, pol.Seed, pol.MaxFaults, len(pol.Rules), pol.Window)
	return p
}

// passthrough stops injecting faults.
func (p *faultProxy) passthrough() {
	p.mu.Lock()
	p.off = true
	p.mu.Unlock()
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Method == http.MethodPost && !p.pol.S3 {
		// REST bodies are small JSON: read to classify (partition commits).
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			p.drop(w)
			return
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	d := p.decide(r, body)
	if d == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	switch d.kind {
	case fault500, fault503:
		_, _ = io.Copy(io.Discard, r.Body)
		code := http.StatusInternalServerError
		if d.kind == fault503 {
			code = http.StatusServiceUnavailable
		}
		p.errorAnswer(w, r, code)
		return
	case faultDrop:
		// The request arrived whole; the connection dies without an answer.
		_, _ = io.Copy(io.Discard, r.Body)
		p.drop(w)
		return
	case faultDelay:
		delay := d.delay
		if delay == 0 {
			maxDelay := max(p.pol.MaxDelay, 100*time.Millisecond)
			p.mu.Lock()
			delay = maxDelay/10 + time.Duration(p.rng.Int64N(int64(maxDelay-maxDelay/10)))
			p.mu.Unlock()
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), faultCtxKey{}, d)))
}

// decide picks the fault for a request (nil: forward untouched).
func (p *faultProxy) decide(r *http.Request, body []byte) *faultDecision {
	class := ""
	if p.pol.Classify != nil {
		class = p.pol.Classify(r, body)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.requests++
	cls := class
	if cls == "" {
		cls = "other"
	}
	p.byClass[r.Method+" "+cls]++
	if !p.off && time.Since(p.start) <= p.pol.Window {
		for _, rule := range p.pol.Rules {
			if rule.n < rule.Max && rule.Match(r) {
				rule.n++
				p.faults++
				p.counts[rule.Kind]++
				p.events = append(p.events, faultEvent{At: time.Since(p.start), Kind: rule.Kind, Class: "rule " + rule.Name, Method: r.Method, Path: r.URL.Path})
				return &faultDecision{kind: rule.Kind, class: "rule " + rule.Name, delay: rule.Delay, ev: len(p.events) - 1}
			}
		}
	}
	if class == "" {
		return nil
	}
	p.ordinals[class]++
	n := p.ordinals[class]
	if class == "commit" || class == "partition-commit" {
		p.commits++
		if class == "partition-commit" {
			p.partCommits++
		}
	}
	if p.off || p.faults >= p.pol.MaxFaults || time.Since(p.start) > p.pol.Window {
		return nil
	}
	kind, ok := p.pol.Forced[class][n]
	if !ok {
		kinds := p.pol.Kinds[class]
		if len(kinds) == 0 || p.rng.Float64() >= p.pol.Rate[class] {
			return nil
		}
		kind = kinds[p.rng.IntN(len(kinds))]
	}
	p.faults++
	p.counts[kind]++
	p.events = append(p.events, faultEvent{At: time.Since(p.start), Kind: kind, Class: class, Method: r.Method, Path: r.URL.Path})
	return &faultDecision{kind: kind, class: class, ev: len(p.events) - 1}
}

// drop closes the client's connection without an answer.
func (p *faultProxy) drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faultproxy: the ResponseWriter cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, as a crashed server or a middlebox gives
	}
	conn.Close()
}

// errorAnswer writes an error in the upstream's own format.
func (p *faultProxy) errorAnswer(w http.ResponseWriter, r *http.Request, code int) {
	w.Header().Set("Connection", "close")
	if p.pol.S3 {
		s3code := map[int]string{500: "InternalError", 503: "SlowDown"}[code]
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the integration tests' fault proxy</Message><Resource>%s</Resource></Error>`, s3code, r.URL.Path)
		}
		return
	}
	typ := map[int]string{500: "InternalServerError", 503: "ServiceUnavailableException"}[code]
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"message":"injected by the integration tests' fault proxy","type":%q,"code":%d}}`, typ, code)
}

// faultStats is a snapshot of what a proxy saw and did.
type faultStats struct {
	Requests, Faults, Commits, PartitionCommits int
	Counts                                      map[faultKind]int
	ByClass                                     map[string]int
	Events                                      []faultEvent
}

func (p *faultProxy) stats() faultStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := faultStats{Requests: p.requests, Faults: p.faults, Commits: p.commits, PartitionCommits: p.partCommits,
		Counts: map[faultKind]int{}, ByClass: map[string]int{}, Events: append([]faultEvent(nil), p.events...)}
	for k, v := range p.counts {
		s.Counts[k] = v
	}
	for k, v := range p.byClass {
		s.ByClass[k] = v
	}
	return s
}

// landedLost counts lost answers to requests of class the server had
// accepted (2xx): work that was done although the client was told otherwise.
func (s faultStats) landedLost(class string) int {
	n := 0
	for _, e := range s.Events {
		if e.Kind.lost() && e.Class == class && e.Upstream >= 200 && e.Upstream < 300 {
			n++
		}
	}
	return n
}

// report is a human summary: counts per kind, per request class, and every
// lost answer.
func (s faultStats) report(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "fault proxy %s: %d requests, %d faults injected", name, s.Requests, s.Faults)
	if s.Commits > 0 {
		fmt.Fprintf(&b, ", %d commit POSTs (%d partition commits)", s.Commits, s.PartitionCommits)
	}
	b.WriteString("\n  injected per kind:")
	for _, k := range []faultKind{fault500, fault503, faultDrop, faultDelay, faultLost503, faultLostDrop} {
		fmt.Fprintf(&b, "\n    %-52s %d", k, s.Counts[k])
	}
	b.WriteString("\n  requests per class:")
	classes := make([]string, 0, len(s.ByClass))
	for c := range s.ByClass {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, c := range classes {
		fmt.Fprintf(&b, " %s=%d", c, s.ByClass[c])
	}
	b.WriteString("\n  faults in order:")
	for _, e := range s.Events {
		fmt.Fprintf(&b, "\n    %7.2fs  %-16s %-6s %-60s %s", e.At.Seconds(), e.Class, e.Method, shortPath(e.Path), e.Kind)
		if e.Kind.lost() {
			if e.Upstream == 0 {
				b.WriteString(" (the server did not answer)")
			} else {
				fmt.Fprintf(&b, " (the server had answered %d)", e.Upstream)
			}
		}
	}
	return b.String()
}

func shortPath(p string) string {
	if len(p) > 60 {
		return "…" + p[len(p)-59:]
	}
	return p
}

// restCommitPath is the REST catalog's commit endpoint,
// POST /v1/{prefix}/namespaces/{ns}/tables/{table} (not .../tables, which
// creates a table, nor .../tables/{table}/metrics and the like).
var restCommitPath = regexp.MustCompile(`^/v1/(?:.+/)?namespaces/[^/]+/tables/[^/]+$`)

// classifyREST: commit POSTs are "partition-commit" (their snapshot summary
// carries icefill.attempt) or "commit"; reads are "read"; other requests
// (config, namespaces, table creation) "other-write".
func classifyREST(r *http.Request, body []byte) string {
	switch {
	case r.Method == http.MethodPost && restCommitPath.MatchString(r.URL.Path):
		if bytes.Contains(body, []byte(`"icefill.attempt"`)) {
			return "partition-commit"
		}
		return "commit"
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return "read"
	default:
		return "other-write"
	}
}

// classifyS3: "put", "get" (objects), "list" (GET on a bucket with a query),
// "head", "delete".
func classifyS3(r *http.Request, _ []byte) string {
	switch r.Method {
	case http.MethodPut:
		return "put"
	case http.MethodHead:
		return "head"
	case http.MethodDelete:
		return "delete"
	case http.MethodGet:
		if r.URL.Query().Has("list-type") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0 {
			return "list"
		}
		return "get"
	case http.MethodPost:
		return "post"
	}
	return ""
}
