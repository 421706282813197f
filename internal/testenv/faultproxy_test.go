package testenv

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFaultProxy drives each fault of the proxy against a small upstream
// and checks what the client sees and what the log says.
func TestFaultProxy(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
			return
		}
		io.WriteString(w, strings.Repeat("x", 1000+int(n)))
	}))
	t.Cleanup(up.Close)
	target := strings.TrimPrefix(up.URL, "http://")
	client := &http.Client{Timeout: 2 * time.Second}
	do := func(p *FaultProxy, method, path string, body []byte) (int, int, error) {
		req, _ := http.NewRequest(method, "http://"+p.Addr+path, bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, len(b), err
	}
	last := func(p *FaultProxy) Request {
		reqs := p.Requests()
		return reqs[len(reqs)-1]
	}

	t.Run("every nth and path", func(t *testing.T) {
		p := StartFaultProxy(t, target, 1, Rule{Method: "PUT", Path: MatchPath(`^/b/`), Every: 3, Action: Action{Kind: Status, Status: 503, RetryAfter: "1"}})
		var got []int
		for range 6 {
			st, _, err := do(p, "PUT", "/b/k", []byte("data"))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, st)
		}
		if st, _, _ := do(p, "PUT", "/other", nil); st != 201 {
			t.Errorf("a path the rule does not match got %d", st)
		}
		if want := []int{201, 201, 503, 201, 201, 503}; !slices.Equal(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
		reqs := p.Requests()
		if r := reqs[2]; r.Fault.Status != 503 || r.Forwarded || r.BodyRead != 4 || r.Rule != 0 {
			t.Errorf("the 3rd request's log: %+v", r)
		}
		if r := reqs[3]; !r.Completed || r.Upstream != 201 || r.Fault.Kind != "" {
			t.Errorf("the 4th request's log: %+v", r)
		}
		if c := CompletedTwice(reqs, "PUT", nil); len(c) != 1 || c[0] != "/b/k ×4" {
			t.Errorf("CompletedTwice: %v", c)
		}
	})

	t.Run("retry-after", func(t *testing.T) {
		p := StartFaultProxy(t, target, 1, Rule{Times: 1, Action: Action{Kind: Status, Status: 429, RetryAfter: "7"}})
		resp, err := client.Get("http://" + p.Addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
			t.Errorf("got %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if st, _, _ := do(p, "GET", "/x", nil); st != 200 {
			t.Errorf("Times 1: the second request got %d", st)
		}
	})

	t.Run("probability is reproducible", func(t *testing.T) {
		run := func(seed uint64) string {
			p := StartFaultProxy(t, target, seed, Rule{Probability: 0.3, Action: Action{Kind: Status, Status: 500}})
			var b strings.Builder
			for range 40 {
				st, _, _ := do(p, "GET", "/p", nil)
				b.WriteString(map[int]string{200: ".", 500: "F"}[st])
			}
			return b.String()
		}
		a, b, c := run(7), run(7), run(8)
		if a != b || a == c || !strings.Contains(a, "F") || !strings.Contains(a, ".") {
			t.Errorf("seed 7: %s and %s; seed 8: %s", a, b, c)
		}
	})

	t.Run("reset, cuts, delay and stall", func(t *testing.T) {
		p := StartFaultProxy(t, target, 1)
		before := hits.Load()
		p.Fail(1, Action{Kind: Reset})
		if _, _, err := do(p, "PUT", "/r", []byte("abc")); err == nil {
			t.Error("reset: no error")
		}
		p.Fail(1, Action{Kind: CutRequest, After: 100 << 10})
		if _, _, err := do(p, "PUT", "/c", make([]byte, 1<<20)); err == nil {
			t.Error("cut request: no error")
		}
		if r := last(p); r.BodyRead != 100<<10 || r.Forwarded {
			t.Errorf("cut request log: read %d, forwarded %v", r.BodyRead, r.Forwarded)
		}
		if hits.Load() != before {
			t.Errorf("a reset or cut request reached the upstream")
		}
		p.Fail(1, Action{Kind: CutResponse, After: 500})
		st, n, err := do(p, "GET", "/g", nil)
		if st != 200 || n != 500 || err == nil {
			t.Errorf("cut response: status %d, %d bytes, error %v; want 200, 500 bytes, an error", st, n, err)
		}
		if r := last(p); !r.Completed {
			t.Errorf("cut response: upstream did not complete: %+v", r)
		}
		p.Fail(1, Action{Kind: Delay, Delay: 300 * time.Millisecond})
		start := time.Now()
		if st, _, err := do(p, "GET", "/d", nil); st != 200 || err != nil || time.Since(start) < 300*time.Millisecond {
			t.Errorf("delay: %d, %v after %s", st, err, time.Since(start))
		}
		p.Fail(1, Action{Kind: Stall, After: -1})
		short := &http.Client{Timeout: 300 * time.Millisecond}
		if _, err := short.Get("http://" + p.Addr + "/s"); err == nil {
			t.Error("stall: answered")
		}
		if r := last(p); r.Fault.Kind != Stall || r.Status != 0 || r.Forwarded {
			t.Errorf("stall log: %+v", r)
		}
		if p.Pending() != 0 {
			t.Errorf("%d faults pending", p.Pending())
		}
		if got := FaultCounts(p.Requests()); got[Reset] != 1 || got[CutRequest] != 1 || got[CutResponse] != 1 || got[Delay] != 1 || got[Stall] != 1 {
			t.Errorf("fault counts %v", got)
		}
	})
}
