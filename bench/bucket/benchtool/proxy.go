package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// StatsPath is where the proxy answers with its counts (and resets them);
// ".bench" is no valid bucket name, so no S3 request reaches it.
const StatsPath = "/.bench/stats"

// Count is what one kind of request amounted to.
type Count struct {
	Requests int   `json:"requests"`
	Sent     int64 `json:"sent"`     // request body bytes
	Received int64 `json:"received"` // response body bytes
}

// counter is the proxy's tally since the last read.
type counter struct {
	mu sync.Mutex
	by map[string]*Count
}

func (c *counter) add(kind string, sent, received int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.by[kind]
	if n == nil {
		n = &Count{}
		c.by[kind] = n
	}
	n.Requests++
	n.Sent += sent
	n.Received += received
}

func (c *counter) take() map[string]*Count {
	c.mu.Lock()
	defer c.mu.Unlock()
	by := c.by
	c.by = map[string]*Count{}
	return by
}

// Kind names an S3 request for the report: PUT (PutObject, UploadPart),
// POST (create and complete multipart uploads, DeleteObjects), HEAD, GET
// (an object, or a bucket sub-resource such as ?location), LIST
// (ListObjects, ListMultipartUploads, ListParts), DELETE.
func Kind(method, path string, q url.Values) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if method != http.MethodGet {
		return method
	}
	if key != "" {
		if q.Has("uploadId") {
			return "LIST"
		}
		return "GET"
	}
	if len(q) == 0 {
		return "LIST"
	}
	for _, p := range []string{"list-type", "prefix", "delimiter", "marker", "continuation-token", "uploads", "max-keys"} {
		if q.Has(p) {
			return "LIST"
		}
	}
	return "GET"
}

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// proxy forwards every request on listen to target (host:port), keeping
// the Host header the client signed, each after delay (a round trip to a
// remote store, to be simulated; 0 for none).
func proxy(listen, target string, delay time.Duration) error {
	to := &url.URL{Scheme: "http", Host: target}
	c := &counter{by: map[string]*Count{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Host = pr.In.Host // SigV4 signs the Host header
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			DisableCompression:  true,
			WriteBufferSize:     256 << 10,
			ReadBufferSize:      256 << 10,
		},
		BufferPool: bufferPool{},
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == StatsPath {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(c.take())
			return
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		kind := Kind(r.Method, r.URL.Path, r.URL.Query())
		body := &countingReader{r: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = body
		}
		cw := &countingWriter{ResponseWriter: w}
		rp.ServeHTTP(cw, r)
		c.add(kind, body.n, cw.n)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return (&http.Server{Handler: h}).Serve(ln)
}

type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
