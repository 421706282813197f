package buckettest

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Fault is what the Proxy does to a request instead of forwarding it.
type Fault int

const (
	// Fault503 answers 503 Service Unavailable with an S3 SlowDown error.
	Fault503 Fault = iota + 1
	// FaultReset resets the connection (TCP RST) before reading the body.
	FaultReset
	// FaultResetMidBody reads part of the request body, then resets the
	// connection.
	FaultResetMidBody
)

// Request is what the Proxy saw of a request.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	// Trailer holds HTTP trailers, read after the body.
	Trailer          http.Header
	ContentLength    int64
	TransferEncoding []string
	// Fault is the fault injected instead of forwarding it, if any.
	Fault Fault
}

// Proxy is an HTTP reverse proxy in front of a server (MinIO) that records
// every request and injects faults. The Host header is passed through
// unchanged, so SigV4 signatures made for the proxy's address stay valid.
type Proxy struct {
	// Addr is the proxy's host:port, to use as an S3 endpoint.
	Addr string

	mu     sync.Mutex
	reqs   []Request
	faults []Fault
}

// NewProxy starts a proxy to target (host:port), stopped when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String()}
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
		rec := Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding}
		p.mu.Lock()
		if len(p.faults) > 0 {
			rec.Fault, p.faults = p.faults[0], p.faults[1:]
		}
		p.mu.Unlock()
		switch rec.Fault {
		case Fault503:
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected).</Message></Error>`)
		case FaultReset, FaultResetMidBody:
			if rec.Fault == FaultResetMidBody {
				io.CopyN(io.Discard, r.Body, 32<<10)
			}
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				conn.Close()
			}
		default:
			rp.ServeHTTP(w, r)
		}
		rec.Trailer = r.Trailer.Clone()
		p.mu.Lock()
		p.reqs = append(p.reqs, rec)
		p.mu.Unlock()
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// Fail makes the next n requests fail with f (after any already queued).
func (p *Proxy) Fail(n int, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		p.faults = append(p.faults, f)
	}
}

// Pending is the number of queued faults not yet injected.
func (p *Proxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.faults)
}

// Requests returns the requests seen so far.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs...)
}

// Reset forgets the requests seen so far.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = nil
}
