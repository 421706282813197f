package bucket

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// NewTransport is the HTTP transport of the remote stores (S3 and HTTP):
// many concurrent requests to one host, proxies from the environment, and
// no transparent compression, so that an object stored with a
// Content-Encoding (a zstd narinfo) is returned as stored. Every request
// is watched for stalls (WatchIdle).
func NewTransport() http.RoundTripper {
	return WatchIdle(&http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	})
}

// DefaultIdleTimeout is how long a request may make no progress in either
// direction before WatchIdle gives up on it.
const DefaultIdleTimeout = 30 * time.Second

// IdleTimeout, in nanoseconds, replaces DefaultIdleTimeout when positive;
// it is read at the start of every request (tests make it short).
var IdleTimeout atomic.Int64

func idleTimeout() time.Duration {
	if d := time.Duration(IdleTimeout.Load()); d > 0 {
		return d
	}
	return DefaultIdleTimeout
}

// StallError is the error of a request WatchIdle gave up on: no byte of
// the request body was taken and no byte of the answer came for Idle.
// It is a timeout (net.Error), so IsTransient (and the registry's
// classifier) retry it.
type StallError struct {
	Method, Host, Path string
	Idle               time.Duration
	// Phase is what the request was doing: "sending the request body",
	// "waiting for the answer" or "reading the answer".
	Phase string
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s stalled: no progress for %s %s (%s %s); giving up on this request", e.Host, e.Idle, e.Phase, e.Method, e.Path)
}

// Timeout and Temporary make a StallError a net.Error timeout.
func (e *StallError) Timeout() bool   { return true }
func (e *StallError) Temporary() bool { return true }

// WatchIdle wraps inner so that a request that makes no progress — the
// server takes no byte of the body, sends no byte of the answer — for
// IdleTimeout (DefaultIdleTimeout) is cancelled with a *StallError that
// names the host. The request body and the response body are wrapped in
// readers that note progress; a watchdog timer checks it. This is the one
// stall guard of releng's HTTP clients: the object stores (S3, HTTP) and
// the registries.
func WatchIdle(inner http.RoundTripper) http.RoundTripper {
	return &idleTransport{inner: inner}
}

type idleTransport struct{ inner http.RoundTripper }

// watch is the progress of one request.
type watch struct {
	idle     time.Duration
	last     atomic.Int64 // unix nanoseconds of the last progress
	phase    atomic.Value // string
	fired    atomic.Bool
	cancel   context.CancelFunc
	err      *StallError
	stopOnce sync.Once

	mu      sync.Mutex // guards timer and stopped
	timer   *time.Timer
	stopped bool
}

func (w *watch) progress() { w.last.Store(time.Now().UnixNano()) }

// check fires when the request has been idle for w.idle, or sets the
// timer again for the rest.
func (w *watch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	since := time.Since(time.Unix(0, w.last.Load()))
	if since < w.idle {
		w.timer.Reset(w.idle - since)
		return
	}
	w.err.Phase = w.phase.Load().(string)
	w.fired.Store(true)
	w.cancel()
}

// stop ends the watch and releases the request's context.
func (w *watch) stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped = true
		w.timer.Stop()
		w.mu.Unlock()
		w.cancel()
	})
}

// fail replaces err with the StallError if the watchdog cancelled the
// request.
func (w *watch) fail(err error) error {
	if err != nil && w.fired.Load() {
		return w.err
	}
	return err
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	w := &watch{idle: idleTimeout(), cancel: cancel,
		err: &StallError{Method: req.Method, Host: req.URL.Host, Path: req.URL.Path}}
	w.err.Idle = w.idle
	w.phase.Store("waiting for the answer")
	w.progress()
	w.mu.Lock()
	w.timer = time.AfterFunc(w.idle, w.check)
	w.mu.Unlock()
	out := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		w.phase.Store("sending the request body")
		out.Body = &reqBody{ReadCloser: req.Body, w: w}
		if req.GetBody != nil {
			out.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil || b == nil || b == http.NoBody {
					return b, err
				}
				return &reqBody{ReadCloser: b, w: w}, nil
			}
		}
	}
	resp, err := t.inner.RoundTrip(out)
	if err != nil {
		w.stop()
		return nil, w.fail(err)
	}
	w.progress()
	w.phase.Store("reading the answer")
	resp.Body = &respBody{ReadCloser: resp.Body, w: w}
	return resp, nil
}

// reqBody notes progress as the transport takes the request body.
type reqBody struct {
	io.ReadCloser
	w *watch
}

func (b *reqBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.progress()
	if err == io.EOF {
		b.w.phase.Store("waiting for the answer")
	}
	return n, err
}

// respBody notes progress as the answer is read, and ends the watch at
// its end.
type respBody struct {
	io.ReadCloser
	w *watch
}

func (b *respBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.progress()
	}
	if err == io.EOF {
		b.w.stop()
		return n, err
	}
	return n, b.w.fail(err)
}

func (b *respBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	return err
}
