package release

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/testenv"
)

// faultRules inject, each with its probability (about 28% of requests in
// all): resets before the body, cut request bodies, 500, 503 and 429
// (Retry-After 1 s), stalls (the server never answers) and delays.
func faultRules() []testenv.Rule {
	return []testenv.Rule{
		{Probability: 0.06, Action: testenv.Action{Kind: testenv.Reset}},
		{Probability: 0.05, Action: testenv.Action{Kind: testenv.CutRequest, After: 512}},
		{Probability: 0.05, Action: testenv.Action{Kind: testenv.Status, Status: 500}},
		{Probability: 0.04, Action: testenv.Action{Kind: testenv.Status, Status: 503, RetryAfter: "1"}},
		{Probability: 0.03, Action: testenv.Action{Kind: testenv.Status, Status: 429, RetryAfter: "1"}},
		{Probability: 0.02, Action: testenv.Action{Kind: testenv.Stall, After: -1}},
		{Probability: 0.03, Action: testenv.Action{Kind: testenv.Delay, Delay: 300 * time.Millisecond}},
	}
}

// retries counts the retry events in an upload's log.
func retries(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, string(runctx.Retry)+" ") {
			n++
		}
	}
	return n
}

// putsCompletedTwice lists the writes the upstream completed more than
// once: S3 object PUTs (and parts) by bucket/key?query, registry blobs by
// digest and manifests by reference. A key the plans asked about n times
// (n HEADs answered before its first PUT) may be completed n times: the
// cache names a NAR by its hash, so two store paths with the same
// contents (the doc outputs of two systems) plan and send the same key.
func putsCompletedTwice(s3, reg []testenv.Request) []string {
	n, allowed := map[string]int{}, map[string]int{}
	for _, r := range s3 {
		k := "s3 " + r.Path + "?" + r.RawQuery
		switch {
		case r.Method == "HEAD" && r.Upstream != 0 && n[k] == 0:
			allowed[k]++
		case r.Method == "PUT" && r.Completed:
			n[k]++
		}
	}
	for _, r := range reg {
		if r.Method != "PUT" || !r.Completed {
			continue
		}
		q, _ := url.ParseQuery(r.RawQuery)
		switch {
		case q.Get("digest") != "":
			n["blob "+q.Get("digest")]++
		case strings.Contains(r.Path, "/manifests/"):
			n["manifest "+r.Path]++
		}
	}
	var out []string
	for k, c := range n {
		if c > max(allowed[k], 1) {
			out = append(out, fmt.Sprintf("%s ×%d", k, c))
		}
	}
	sort.Strings(out)
	return out
}

// figures sums up a proxy log for the test's output and docs/upload.md.
func figures(name string, reqs []testenv.Request) string {
	faults := testenv.FaultCounts(reqs)
	n := 0
	var kinds []string
	for k, c := range faults {
		n += c
		kinds = append(kinds, fmt.Sprintf("%s %d", k, c))
	}
	sort.Strings(kinds)
	statuses := map[int]int{}
	replayable := 0 // resets of a GET or HEAD, which Go's transport may send again itself
	for _, r := range reqs {
		switch r.Fault.Kind {
		case testenv.Status:
			statuses[r.Fault.Status]++
		case testenv.Reset, testenv.CutRequest:
			if r.Method == "GET" || r.Method == "HEAD" {
				replayable++
			}
		}
	}
	return fmt.Sprintf("%s: %d requests, %d faults (%.0f%%): %s; statuses %v; resets of a GET or HEAD %d", name, len(reqs), n, 100*float64(n)/float64(max(len(reqs), 1)), strings.Join(kinds, ", "), statuses, replayable)
}

// TestUploadUnderFaults: with the proxies in front of MinIO and the
// registry injecting resets, cut bodies, 500/503/429, stalls and delays
// into more than 20% of the requests, a full upload of the example
// project completes, verify (under the same faults) passes, and no write
// was completed twice by the servers.
func TestUploadUnderFaults(t *testing.T) {
	e := newPlanEnv(t)
	buckettest.ShortIdle(t, time.Second)
	e.s3.SetRules(faultRules()...)
	e.reg.SetRules(faultRules()...)
	start := time.Now()
	pol := retry.Policy{Attempts: 10, Initial: 50 * time.Millisecond, Max: 2 * time.Second}
	_, log, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", NoConfirm: true, Run: &runctx.Run{Retry: pol}})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("upload under faults: %v\n%s", err, log)
	}
	s3Reqs, regReqs := e.s3.Requests(), e.reg.Requests()
	t.Logf("upload in %s, %d retries", took.Round(time.Millisecond), retries(log))
	t.Logf("%s", figures("S3", s3Reqs))
	t.Logf("%s", figures("registry", regReqs))
	all := append(append([]testenv.Request(nil), s3Reqs...), regReqs...)
	faulted := 0
	for _, k := range testenv.FaultCounts(all) {
		faulted += k
	}
	if faulted*5 < len(all) {
		t.Errorf("only %d faults in %d requests (want >= 20%%)", faulted, len(all))
	}
	if retries(log) < faulted/2 {
		t.Errorf("%d retries for %d faults", retries(log), faulted)
	}
	if twice := putsCompletedTwice(s3Reqs, regReqs); len(twice) > 0 {
		t.Errorf("writes the servers completed more than once:\n  %s", strings.Join(twice, "\n  "))
		for _, r := range all {
			for _, w := range twice {
				if strings.Contains(w, r.Path) {
					t.Logf("%s", r)
				}
			}
		}
	}
	// Every stall was given up on within the idle timeout and a margin.
	for _, r := range all {
		if r.Fault.Kind == testenv.Stall && r.Duration > 3*time.Second {
			t.Errorf("a stalled request was held %s: %s", r.Duration, r)
		}
	}

	e.s3.Reset()
	e.reg.Reset()
	start = time.Now()
	p := e.open(t)
	rep, err := Verify(context.Background(), p, VerifyOptions{Environment: "staging", Run: &runctx.Run{Retry: pol}})
	if err != nil {
		t.Fatalf("verify under faults: %v", err)
	}
	if f := failures(rep); len(f) > 0 {
		t.Errorf("verify under faults:\n  %s", strings.Join(f, "\n  "))
	}
	t.Logf("verify in %s, %d checks", time.Since(start).Round(time.Millisecond), len(rep.Checks))
	t.Logf("%s", figures("verify S3", e.s3.Requests()))
	t.Logf("%s", figures("verify registry", e.reg.Requests()))
}

// TestStallsAndPermanentErrors: a server that accepts a request and never
// answers (MinIO for one PUT, the registry for one manifest PUT) is given
// up on within the idle timeout, named, and the request retried, and the
// upload completes; then a permanent 403 on the docs bucket stops the
// next upload at once, unretried, with what was and was not published.
func TestStallsAndPermanentErrors(t *testing.T) {
	e := newPlanEnv(t)
	const idle = time.Second
	buckettest.ShortIdle(t, idle)
	e.s3.SetRules(testenv.Rule{Method: "PUT", Path: regexp.MustCompile(`^/releases/`), Times: 1, Action: testenv.Action{Kind: testenv.Stall, After: -1}})
	e.reg.SetRules(testenv.Rule{Method: "PUT", Path: regexp.MustCompile(`/manifests/`), Times: 1, Action: testenv.Action{Kind: testenv.Stall}})
	start := time.Now()
	_, log, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err != nil {
		t.Fatalf("upload with stalls: %v\n%s", err, log)
	}
	t.Logf("upload with 2 stalls in %s", time.Since(start).Round(time.Millisecond))
	for _, p := range []struct {
		name string
		fp   *testenv.FaultProxy
	}{{"MinIO", e.s3}, {"registry", e.reg}} {
		var stalls []testenv.Request
		for _, r := range p.fp.Requests() {
			if r.Fault.Kind == testenv.Stall {
				stalls = append(stalls, r)
			}
		}
		if len(stalls) != 1 {
			t.Fatalf("%s: %d stalls injected, want 1", p.name, len(stalls))
		}
		if !strings.Contains(log, p.fp.Addr+" stalled: no progress for 1s") {
			t.Errorf("%s: no retry names %s as stalled:\n%s", p.name, p.fp.Addr, log)
		}
		// A server that never answers is seen when the client hangs up;
		// one that stopped reading is held until the proxy stops.
		if s := stalls[0]; s.Fault.After < 0 && (s.Duration < idle*9/10 || s.Duration > idle+time.Second) {
			t.Errorf("%s: the stalled request was given up on after %s (idle timeout %s)", p.name, s.Duration, idle)
		}
		// The same request was sent again and completed.
		again := false
		for _, r := range p.fp.Requests() {
			again = again || (r.Seq > stalls[0].Seq && r.Method == stalls[0].Method && r.Path == stalls[0].Path && r.Completed)
		}
		if !again && p.name == "MinIO" {
			t.Errorf("%s: %s %s was not sent again", p.name, stalls[0].Method, stalls[0].Path)
		}
	}

	// A permanent error: access denied on the docs bucket.
	p := e.open(t)
	docs := e.s3Bucket(t, p, "docs")
	if err := docs.Delete(context.Background(), "manual/hello/nightly/usage.html"); err != nil {
		t.Fatal(err)
	}
	e.s3.SetRules(testenv.Rule{Method: "PUT", Path: regexp.MustCompile(`^/docs/`), Action: testenv.Action{Kind: testenv.Status, Status: 403}})
	e.reg.SetRules()
	e.s3.Reset()
	start = time.Now()
	_, log, err = runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", NoConfirm: true})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("upload with a 403 on docs succeeded:\n%s", log)
	}
	t.Logf("403: stopped in %s: %v", took.Round(time.Millisecond), err)
	msg := err.Error()
	for _, want := range []string{"stopped at step docs", "403 AccessDenied", "published: steps cache, images, releases; docs part way", "not published: steps manifest", ", git; run `releng upload` again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	denied := notRetried(t, log, e.s3.Requests())
	if denied != 1 || took > 10*time.Second {
		t.Errorf("%d PUTs refused, stopped after %s", denied, took)
	}
}

// TestRegistryPermanentError: a registry that refuses to store a manifest
// (403) stops the upload at the images step at once, unretried, saying
// the credentials may not push and what was not published.
func TestRegistryPermanentError(t *testing.T) {
	e := newPlanEnv(t)
	e.reg.SetRules(testenv.Rule{Method: "PUT", Path: regexp.MustCompile(`/manifests/`), Action: testenv.Action{Kind: testenv.Status, Status: 403, Code: "DENIED"}})
	start := time.Now()
	_, log, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", NoConfirm: true})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("upload with a 403 on manifests succeeded:\n%s", log)
	}
	t.Logf("registry 403: stopped in %s: %v", took.Round(time.Millisecond), err)
	msg := err.Error()
	for _, want := range []string{"stopped at step images", "may not push to hello", "published: steps cache; images part way", "not published: steps releases, docs, manifest"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	denied := notRetried(t, log, e.reg.Requests())
	if denied == 0 || took > 10*time.Second {
		t.Errorf("%d manifests refused, stopped after %s", denied, took)
	}
}

// notRetried checks that the upload whose log is log retried nothing and
// that no request was refused with 403 twice; it returns how many were.
func notRetried(t *testing.T, log string, reqs []testenv.Request) int {
	t.Helper()
	if n := retries(log); n != 0 {
		t.Errorf("%d retries of a permanent error:\n%s", n, log)
	}
	denied := map[string]int{}
	for _, r := range reqs {
		if r.Fault.Status == 403 {
			denied[r.Path]++
		}
	}
	for path, n := range denied {
		if n > 1 {
			t.Errorf("%s was refused %d times: a permanent error was retried", path, n)
		}
	}
	return len(denied)
}
