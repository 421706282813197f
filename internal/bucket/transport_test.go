package bucket_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/testenv"
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

// TestMinIOPaused: a real MinIO paused with SIGSTOP in the middle of a
// PUT (it stops reading the body and answering) is given up on within the
// idle timeout, the PUT is retried, naming the host as stalled, and once
// MinIO resumes the object is stored whole. Without the stall guard the
// PUT waited as long as MinIO stayed paused.
func TestMinIOPaused(t *testing.T) {
	const idle = time.Second
	buckettest.ShortIdle(t, idle)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "paused", false)
	b, err := s3.New(s3.Config{Bucket: "paused", Endpoint: m.Endpoint, Scheme: "http",
		Credentials: &s3.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: credentials.Secret(m.SecretKey)},
		Retry:       retry.Policy{Attempts: 20, Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []retry.Event
	ctx := retry.WithOnRetry(context.Background(), func(e retry.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	data := buckettest.Data(3, 16<<20)
	// The body pauses MinIO once 4 MiB have been taken, and resumes it
	// 3 s later.
	var once sync.Once
	var paused time.Time
	body := &hook{data: data, at: 4 << 20, fn: func() {
		once.Do(func() {
			if err := m.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Error(err)
			}
			paused = time.Now()
			time.AfterFunc(3*time.Second, func() { m.Process.Signal(syscall.SIGCONT) })
		})
	}}
	t.Cleanup(func() { m.Process.Signal(syscall.SIGCONT) })
	start := time.Now()
	if _, err := b.Put(ctx, "big", body, int64(len(data)), bucket.PutOptions{SHA256: buckettest.SHA256(data)}); err != nil {
		t.Fatalf("put while MinIO is paused for 3 s: %v", err)
	}
	took := time.Since(start)
	buckettest.CheckContent(t, b, "big", data)
	mu.Lock()
	defer mu.Unlock()
	if paused.IsZero() || len(events) == 0 {
		t.Fatalf("MinIO paused: %v; %d retries", !paused.IsZero(), len(events))
	}
	first := events[0]
	if !strings.Contains(first.Reason, m.Endpoint+" stalled: no progress for 1s") || first.Host != m.Endpoint {
		t.Errorf("the first retry does not name the stalled host: %+v", first)
	}
	// Paused 3 s: the put ends soon after MinIO resumes.
	if took > 3*time.Second+3*idle {
		t.Errorf("the put took %s for a 3 s pause (idle timeout %s)", took, idle)
	}
	t.Logf("put of 16 MiB with MinIO paused 3 s: %s, %d retries; first: %s", took.Round(time.Millisecond), len(events), first)
}

// hook is a rewindable body that calls fn once at byte at.
type hook struct {
	data []byte
	off  int
	at   int
	fn   func()
}

func (h *hook) Read(p []byte) (int, error) {
	if h.off >= len(h.data) {
		return 0, io.EOF
	}
	if h.off >= h.at {
		h.fn()
	}
	n := copy(p, h.data[h.off:])
	h.off += n
	return n, nil
}

func (h *hook) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart {
		return 0, errors.New("seek: only from the start")
	}
	h.off = int(off)
	return off, nil
}
