package cli

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestInterruptUpload sends SIGINT to `releng upload` while a NAR of the
// cache push is in flight (the proxy holds it). One SIGINT: the NAR in
// flight is still sent, no later step starts (no write reaches the other
// buckets or the registry after the signal), releng exits 130 naming the
// command that finishes the upload, and readers see nothing dangling.
// SIGTERM then SIGINT while the request stalls: the first stops as a
// SIGINT does, the second aborts at once (130). Either way the re-run
// succeeds and verify passes.
func TestInterruptUpload(t *testing.T) {
	e := newPubEnv(t, 2)
	for i, twice := range []bool{false, true} {
		env := []string{"e0", "e1"}[i]
		var (
			proc     atomic.Pointer[os.Process]
			once     sync.Once
			heldKey  string
			signalAt time.Time
			lastSig  atomic.Int64 // unix nanos of the last signal sent
		)
		release := make(chan struct{})
		var after sync.Map // writes outside the cache that arrived after the signal
		signalled := atomic.Bool{}
		e.reg.setTrigger(func(ev proxyEvent) {
			if ev.At == "arrive" && isWrite(ev.R) && signalled.Load() {
				after.Store(ev.R.Method+" "+ev.R.URL.Path, true)
			}
		})
		e.s3.setTrigger(func(ev proxyEvent) {
			if ev.At == "arrive" && isWrite(ev.R) && signalled.Load() && !strings.HasPrefix(ev.R.URL.Path, "/cache-") {
				after.Store(ev.R.Method+" "+ev.R.URL.Path, true)
			}
			if ev.At != "arrive" || ev.R.Method != "PUT" || !strings.Contains(ev.R.URL.Path, "/nar/") {
				return
			}
			hold := false
			once.Do(func() {
				p := proc.Load()
				heldKey, signalAt, hold = strings.TrimPrefix(ev.R.URL.Path, "/cache-"+env[1:]+"/"), time.Now(), true
				first := os.Signal(os.Interrupt)
				if twice {
					first = syscall.SIGTERM // as a first SIGINT
				}
				signalled.Store(true)
				p.Signal(first)
				lastSig.Store(time.Now().UnixNano())
				if twice {
					time.Sleep(300 * time.Millisecond)
					p.Signal(os.Interrupt)
					lastSig.Store(time.Now().UnixNano())
				}
			})
			if hold {
				// The NAR stays in flight a while (a stall, with two).
				wait := time.Second
				if twice {
					wait = 20 * time.Second
				}
				select {
				case <-time.After(wait):
				case <-release:
				}
			}
		})
		res := e.upload(t, env, func(p *os.Process) { proc.Store(p) })
		ended := time.Now()
		close(release)
		e.s3.setTrigger(nil)
		e.reg.setTrigger(nil)
		e.s3.quiesce(t)
		after.Range(func(k, _ any) bool {
			t.Errorf("%s: %s was sent after the signal: a later step started", env, k)
			return true
		})
		if heldKey == "" {
			t.Fatalf("%s: no NAR was sent through the proxy: exit %d\n%s", env, res.code, res.stderr)
		}
		t.Logf("%s (twice %v): exit %d, %s after the first SIGINT, %s after the last\n%s", env, twice, res.code,
			ended.Sub(signalAt).Round(time.Millisecond), ended.Sub(time.Unix(0, lastSig.Load())).Round(time.Millisecond), res.stderr)
		if res.code != 130 {
			t.Errorf("%s: exit %d, want 130", env, res.code)
		}
		for _, want := range []string{"stopping once the objects in flight are sent", "releng upload -C " + e.dir + " --environment " + env + " --noconfirm` again to finish"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%s: stderr lacks %q", env, want)
			}
		}
		_, err := e.mc.StatObject(context.Background(), "cache-"+env[1:], heldKey, minio.StatObjectOptions{})
		if !twice {
			if !strings.Contains(res.stderr, "interrupted: ") {
				t.Errorf("%s: the message does not say it stops after what is in flight", env)
			}
			if err != nil {
				t.Errorf("%s: the NAR in flight at the SIGINT, %s, was not finished: %v", env, heldKey, err)
			}
		} else {
			if !strings.Contains(res.stderr, "terminated: stopping") || !strings.Contains(res.stderr, "interrupt: aborting") || !strings.Contains(res.stderr, "aborted: ") {
				t.Errorf("%s: the message does not say it aborted", env)
			}
			if d := ended.Sub(time.Unix(0, lastSig.Load())); d > 3*time.Second {
				t.Errorf("%s: the second SIGINT took %s to end releng (the request stalls 20 s)", env, d)
			}
		}
		if problems, _ := e.scan(t, i); len(problems) > 0 {
			t.Errorf("%s: after the interrupt, readers see dangling pointers:\n  %s", env, strings.Join(problems, "\n  "))
		}
		if n, _, _ := e.finish(t, env); n != 1 {
			t.Errorf("%s: %d re-runs to finish, want 1", env, n)
		}
	}
}
