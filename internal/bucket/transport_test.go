package bucket_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
)

// endless is an endless request body.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// rawServer accepts connections and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go serve(c)
		}
	}()
	return l.Addr().String()
}

// TestWatchIdle: a server that stops reading the body, one that reads it
// and never answers, and one that stops mid-answer are each given up on
// within about the idle timeout, with a transient error that names the
// host and what stalled; a slow server that keeps making progress is not.
func TestWatchIdle(t *testing.T) {
	const idle = 300 * time.Millisecond
	buckettest.ShortIdle(t, idle)
	client := &http.Client{Transport: bucket.NewTransport()}
	cases := []struct {
		name, phase string
		body        bool
		serve       func(net.Conn)
	}{
		{"stops reading the body", "sending the request body", true, func(c net.Conn) {
			// Read the headers and a little of the body, then nothing.
			c.Read(make([]byte, 4096))
		}},
		{"never answers", "waiting for the answer", false, func(c net.Conn) {
			io.Copy(io.Discard, c)
		}},
		{"stops mid-answer", "reading the answer", false, func(c net.Conn) {
			c.Read(make([]byte, 4096))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nsome of it")
			io.Copy(io.Discard, c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, tc.serve)
			var body io.Reader
			method := http.MethodGet
			if tc.body {
				method, body = http.MethodPut, io.LimitReader(endless{}, 1<<30)
			}
			req, err := http.NewRequest(method, "http://"+addr+"/bucket/key", body)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			took := time.Since(start)
			var se *bucket.StallError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a StallError", err)
			}
			if se.Phase != tc.phase || !strings.Contains(err.Error(), addr+" stalled") {
				t.Errorf("error %q: want phase %q and the host named", err, tc.phase)
			}
			if took < idle || took > idle+time.Second {
				t.Errorf("gave up after %s, idle timeout %s", took, idle)
			}
			if !bucket.IsTransient(&bucket.Error{Op: "put", URL: "s3://bucket/key", Err: err}) {
				t.Errorf("a stall is not transient: %v", err)
			}
		})
	}

	t.Run("slow but moving", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn) {
			c.Read(make([]byte, 4096))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
			for range 8 {
				time.Sleep(idle / 2)
				c.Write([]byte("x"))
			}
		})
		resp, err := client.Get("http://" + addr + "/slow")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "xxxxxxxx" {
			t.Fatalf("slow answer: %q, %v", b, err)
		}
	})

	t.Run("cancelled by the caller", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		ctx, cancel := context.WithTimeout(context.Background(), idle/3)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/x", nil)
		_, err := client.Do(req)
		var se *bucket.StallError
		if errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the caller's deadline became %v", err)
		}
	})
}
