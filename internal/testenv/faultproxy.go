package testenv

import (
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FaultKind is what a FaultProxy does to a request instead of (or while)
// forwarding it.
type FaultKind string

const (
	// Reset resets the connection (TCP RST) before reading the request body.
	Reset FaultKind = "reset"
	// Status answers Action.Status (500, 503, 429, 403 …) with an error
	// body (a registry's JSON for paths under /v2/, else S3's XML), after
	// reading the request body, without forwarding it.
	Status FaultKind = "status"
	// Delay waits Action.Delay, then forwards the request.
	Delay FaultKind = "delay"
	// Stall takes the connection and never answers: with Action.After < 0
	// it reads (and drops) whatever the client sends, a server that stops
	// answering; otherwise it reads After bytes of the body and then stops
	// reading, a server that stops reading. The connection is held until
	// the client closes it (first case) or the proxy stops.
	Stall FaultKind = "stall"
	// CutRequest reads Action.After bytes of the request body, then resets
	// the connection; nothing is forwarded.
	CutRequest FaultKind = "cut-request"
	// CutResponse forwards the request, then sends the status, the headers
	// and Action.After bytes of the upstream's response body, then resets
	// the connection: the upstream completed the request, the client does
	// not learn it.
	CutResponse FaultKind = "cut-response"
)

// Action is a fault. It is comparable.
type Action struct {
	Kind FaultKind
	// Status is the answer of a Status fault.
	Status int
	// Code is the error code of a Status answer; empty for a default by
	// status (S3: InternalError, SlowDown, AccessDenied …; a registry:
	// UNKNOWN, UNAVAILABLE, TOOMANYREQUESTS, DENIED …).
	Code string
	// RetryAfter is the Retry-After header of a Status answer, if any.
	RetryAfter string
	// Delay is the wait of a Delay fault.
	Delay time.Duration
	// After is the byte offset of a CutRequest, CutResponse or Stall.
	After int64
}

func (a Action) String() string {
	switch a.Kind {
	case "":
		return ""
	case Status:
		s := fmt.Sprintf("status %d", a.Status)
		if a.RetryAfter != "" {
			s += " retry-after " + a.RetryAfter
		}
		return s
	case Delay:
		return fmt.Sprintf("delay %s", a.Delay)
	case CutRequest, CutResponse:
		return fmt.Sprintf("%s at %d", a.Kind, a.After)
	}
	return string(a.Kind)
}

// Rule injects Action into the requests it matches. A request matches
// when its method is Method (any if empty), its path matches Path (any if
// nil) and its raw query matches Query (any if nil); of the matching
// requests, the rule fires on every Every-th one (every one if Every <=
// 1) and, if Probability > 0, only with that probability (drawn from the
// proxy's seeded generator, so a run is reproducible for a given order of
// requests). Times > 0 bounds how often it fires. The first rule that
// fires wins.
type Rule struct {
	Method      string
	Path, Query *regexp.Regexp
	Every       int
	Probability float64
	Times       int
	Action      Action

	matched, fired int
}

// Request is what the proxy saw of a request and did with it.
type Request struct {
	Seq                    int
	Method, Path, RawQuery string
	Header                 http.Header
	// Trailer holds HTTP trailers, read after the body.
	Trailer          http.Header
	ContentLength    int64
	TransferEncoding []string
	// BodyRead is the number of request body bytes the proxy read.
	BodyRead int64
	// Fault is the fault injected, if any; Rule its rule's index in the
	// proxy's rules (-1 for none).
	Fault Action
	Rule  int
	// Status is the status the client was sent (0 if none: a reset or
	// a stall).
	Status int
	// Forwarded reports that the request went to the upstream;
	// Upstream is the upstream's status (0 if it did not answer), and
	// Completed that it answered 2xx.
	Forwarded bool
	Upstream  int
	Completed bool
	// Err is what went wrong forwarding, if anything.
	Err      string
	Start    time.Time
	Duration time.Duration
}

// Outcome is a short word for what happened: the fault's kind, or the
// status sent.
func (r Request) Outcome() string {
	if r.Fault.Kind != "" {
		return r.Fault.String()
	}
	if r.Status == 0 {
		return "no answer: " + r.Err
	}
	return strconv.Itoa(r.Status)
}

func (r Request) String() string {
	q := ""
	if r.RawQuery != "" {
		q = "?" + r.RawQuery
	}
	return fmt.Sprintf("#%d %s %s%s body %d → %s (upstream %d) in %s", r.Seq, r.Method, r.Path, q, r.BodyRead, r.Outcome(), r.Upstream, r.Duration.Round(time.Millisecond))
}

// FaultProxy is a loopback HTTP reverse proxy in front of a server (MinIO,
// a registry) that injects faults by rule and logs every request with its
// outcome. The Host header is passed through unchanged, so SigV4
// signatures made for the proxy's address stay valid.
type FaultProxy struct {
	// Addr is the proxy's host:port, to use as the server's address.
	Addr string

	mu    sync.Mutex
	rules []*Rule
	queue []*Rule // Fail's rules, after rules
	rng   *rand.Rand
	reqs  []*Request
	seq   int
	done  chan struct{}
}

// StartFaultProxy starts a proxy to target (host:port) with rules and a
// random generator seeded with seed, stopped when t ends.
func StartFaultProxy(t testing.TB, target string, seed uint64, rules ...Rule) *FaultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{Addr: l.Addr().String(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), done: make(chan struct{})}
	p.SetRules(rules...)
	to := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(rp, w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() {
		close(p.done)
		srv.Close()
	})
	return p
}

// SetRules replaces the rules (not those Fail queued).
func (p *FaultProxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	for i := range rules {
		r := rules[i]
		p.rules = append(p.rules, &r)
	}
}

// Fail injects a into the next n requests, after the faults already
// queued and unless a rule fires first.
func (p *FaultProxy) Fail(n int, a Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, &Rule{Times: n, Action: a})
}

// Pending is the number of faults Fail queued that were not injected yet.
func (p *FaultProxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.queue {
		n += r.Times - r.fired
	}
	return n
}

// Requests returns the requests seen so far (those in progress with
// their outcome so far).
func (p *FaultProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.reqs))
	for i, r := range p.reqs {
		out[i] = *r
	}
	return out
}

// Reset forgets the requests seen so far.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = nil
}

// choose returns the fault for r and its rule's index (-1: none).
func (p *FaultProxy) choose(r *http.Request) (Action, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ru := range p.rules {
		if ru.Times > 0 && ru.fired >= ru.Times {
			continue
		}
		if (ru.Method != "" && ru.Method != r.Method) || (ru.Path != nil && !ru.Path.MatchString(r.URL.Path)) || (ru.Query != nil && !ru.Query.MatchString(r.URL.RawQuery)) {
			continue
		}
		ru.matched++
		if ru.Every > 1 && ru.matched%ru.Every != 0 {
			continue
		}
		if ru.Probability > 0 && p.rng.Float64() >= ru.Probability {
			continue
		}
		ru.fired++
		return ru.Action, i
	}
	for len(p.queue) > 0 {
		ru := p.queue[0]
		if ru.fired < ru.Times {
			ru.fired++
			return ru.Action, len(p.rules)
		}
		p.queue = p.queue[1:]
	}
	return Action{}, -1
}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	p *FaultProxy
	n *int64
}

func (b countingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.p.mu.Lock()
	*b.n += int64(n)
	b.p.mu.Unlock()
	return n, err
}

func (p *FaultProxy) serve(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
	rec := &Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(),
		ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding, Start: time.Now()}
	rec.Fault, rec.Rule = p.choose(r)
	p.mu.Lock()
	p.seq++
	rec.Seq = p.seq
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()
	r.Body = countingBody{r.Body, p, &rec.BodyRead}
	defer func() {
		p.mu.Lock()
		rec.Trailer = r.Trailer.Clone()
		rec.Duration = time.Since(rec.Start)
		p.mu.Unlock()
	}()
	set := func(f func()) {
		p.mu.Lock()
		f()
		p.mu.Unlock()
	}
	a := rec.Fault
	switch a.Kind {
	case Reset:
		reset(w)
		return
	case CutRequest:
		io.CopyN(io.Discard, r.Body, a.After)
		reset(w)
		return
	case Status:
		io.Copy(io.Discard, r.Body)
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		msg := http.StatusText(a.Status) + " (injected by the fault proxy)"
		if strings.HasPrefix(r.URL.Path, "/v2/") {
			// A registry: a distribution-spec JSON error.
			code := a.Code
			if code == "" {
				code = map[int]string{500: "UNKNOWN", 503: "UNAVAILABLE", 429: "TOOMANYREQUESTS", 403: "DENIED", 404: "NAME_UNKNOWN"}[a.Status]
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.Status)
			fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
		} else {
			code := a.Code
			if code == "" {
				code = map[int]string{500: "InternalError", 503: "SlowDown", 429: "SlowDown", 403: "AccessDenied", 404: "NoSuchBucket"}[a.Status]
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(a.Status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
		}
		set(func() { rec.Status = a.Status })
		return
	case Stall:
		if a.After > 0 {
			io.CopyN(io.Discard, r.Body, a.After)
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if a.After < 0 {
			// Read and drop until the client gives up (or the proxy stops).
			go func() {
				<-p.done
				conn.Close()
			}()
			io.Copy(io.Discard, conn)
			return
		}
		<-p.done
		return
	case Delay:
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			set(func() { rec.Err = "client gave up during the delay" })
			return
		}
	}
	// Forward.
	cw := &cutWriter{ResponseWriter: w, left: -1}
	if a.Kind == CutResponse {
		cw.left = a.After
	}
	rp2 := *rp
	rp2.ModifyResponse = func(resp *http.Response) error {
		set(func() {
			rec.Upstream = resp.StatusCode
			rec.Completed = resp.StatusCode/100 == 2
			rec.Status = resp.StatusCode
		})
		return nil
	}
	rp2.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		set(func() { rec.Err = err.Error(); rec.Status = http.StatusBadGateway })
		w.WriteHeader(http.StatusBadGateway)
	}
	set(func() { rec.Forwarded = true })
	rp2.ServeHTTP(cw, r)
}

// cutWriter passes left bytes of the body on (all if left < 0), then
// resets the connection.
type cutWriter struct {
	http.ResponseWriter
	left int64
	cut  bool
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.cut {
		return 0, errCut
	}
	if c.left < 0 || int64(len(b)) < c.left {
		n, err := c.ResponseWriter.Write(b)
		if c.left >= 0 {
			c.left -= int64(n)
		}
		return n, err
	}
	n, _ := c.ResponseWriter.Write(b[:c.left])
	c.cut = true
	http.NewResponseController(c.ResponseWriter).Flush()
	reset(c.ResponseWriter)
	return n, errCut
}

func (c *cutWriter) WriteHeader(code int) {
	c.ResponseWriter.WriteHeader(code)
	if c.left == 0 {
		// Nothing of the body: the status and headers go, then the reset.
		c.cut = true
		http.NewResponseController(c.ResponseWriter).Flush()
		reset(c.ResponseWriter)
	}
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

var errCut = fmt.Errorf("response cut by the fault proxy")

// reset resets the connection (TCP RST); what is still buffered is lost.
func reset(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	}
}

// Summary counts the requests by outcome ("reset", "status 503", "200",
// …), for a report.
func Summary(reqs []Request) map[string]int {
	m := map[string]int{}
	for _, r := range reqs {
		k := r.Outcome()
		if r.Fault.Kind == "" && r.Status == 0 {
			k = "no answer"
		}
		m[k]++
	}
	return m
}

// FaultCounts counts the faults injected by kind.
func FaultCounts(reqs []Request) map[FaultKind]int {
	m := map[FaultKind]int{}
	for _, r := range reqs {
		if r.Fault.Kind != "" {
			m[r.Fault.Kind]++
		}
	}
	return m
}

// CompletedTwice lists the requests of method (PUT) whose upstream
// completed them (2xx) more than once for the same path and query, with
// keep deciding which queries count (nil: all), as "PATH?QUERY ×N".
func CompletedTwice(reqs []Request, method string, keep func(Request) bool) []string {
	n := map[string]int{}
	var order []string
	for _, r := range reqs {
		if r.Method != method || !r.Completed || (keep != nil && !keep(r)) {
			continue
		}
		k := r.Path
		if r.RawQuery != "" {
			k += "?" + r.RawQuery
		}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	var out []string
	for _, k := range order {
		if n[k] > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", k, n[k]))
		}
	}
	return out
}

// MatchPath is regexp.MustCompile, for rules.
func MatchPath(re string) *regexp.Regexp { return regexp.MustCompile(re) }
