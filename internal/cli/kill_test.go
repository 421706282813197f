package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/example"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

// triggerProxy is an HTTP reverse proxy in front of MinIO or the registry
// that calls a trigger at points of every request: when it arrives, as its
// body is read (with the bytes read so far), and once the server answered,
// before the answer is passed on. The tests kill or signal releng from it,
// and hold requests in flight. The Host header passes unchanged (SigV4).
type triggerProxy struct {
	Addr     string
	inflight atomic.Int64
	mu       sync.Mutex
	trigger  func(ev proxyEvent)
}

// proxySeq numbers the requests of every triggerProxy.
var proxySeq atomic.Int64

// proxyEvent is a point of a request the trigger sees.
type proxyEvent struct {
	R *http.Request
	// Seq numbers the requests of all proxies in the order they arrived.
	Seq int64
	// At is "arrive", "body" (Delta more bytes read, Body so far) or
	// "answered".
	At          string
	Body, Delta int64
}

func newTriggerProxy(t *testing.T, target string) *triggerProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &triggerProxy{Addr: l.Addr().String()}
	to := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		ErrorLog:  log.New(io.Discard, "", 0),
		ModifyResponse: func(resp *http.Response) error {
			p.fire(proxyEvent{R: resp.Request, Seq: seqOf(resp.Request), At: "answered"})
			return nil
		},
	}
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.inflight.Add(1)
		defer p.inflight.Add(-1)
		seq := proxySeq.Add(1)
		r = r.WithContext(context.WithValue(r.Context(), seqKey{}, seq))
		p.fire(proxyEvent{R: r, Seq: seq, At: "arrive"})
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &countingBody{rc: r.Body, on: func(n, delta int64) {
				p.fire(proxyEvent{R: r, Seq: seq, At: "body", Body: n, Delta: delta})
			}}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

type seqKey struct{}

func seqOf(r *http.Request) int64 { n, _ := r.Context().Value(seqKey{}).(int64); return n }

func (p *triggerProxy) fire(ev proxyEvent) {
	p.mu.Lock()
	f := p.trigger
	p.mu.Unlock()
	if f != nil {
		f(ev)
	}
}

// setTrigger replaces the trigger (nil: none).
func (p *triggerProxy) setTrigger(f func(proxyEvent)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = f
}

// quiesce waits until no request is in flight through the proxy.
func (p *triggerProxy) quiesce(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("proxy %s: %d requests still in flight", p.Addr, p.inflight.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type countingBody struct {
	rc io.ReadCloser
	n  int64
	on func(n, delta int64)
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.rc.Read(b)
	if n > 0 {
		c.n += int64(n)
		c.on(c.n, int64(n))
	}
	return n, err
}

func (c *countingBody) Close() error { return c.rc.Close() }

// isWrite says whether a request writes (PUT, POST, PATCH, DELETE).
func isWrite(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }

// pubEnv is the example project, built, as an official release, with
// environments e0…eN-1 each publishing to its own buckets of one MinIO,
// its own repository of one registry and its own bare git remote, all
// through trigger proxies; and the releng binary to publish it with.
type pubEnv struct {
	bin       string
	dir       string
	env       []string // the binary's environment
	m         *testenv.MinIO
	mc        *minio.Client
	regAddr   string // the registry itself
	s3, reg   *triggerProxy
	cacheRoot string
	bigKey    string // the big file's key in the releases bucket ("": none)
	repo      *testenv.GitRepo
	keyFiles  []string // environment i's signing key
}

// newPubEnv sets up n environments.
func newPubEnv(t *testing.T, n int) *pubEnv {
	t.Helper()
	nix := testenv.SetupNix(t)
	m := testenv.StartMinIO(t)
	reg := testenv.StartRegistry(t)
	e := &pubEnv{m: m, mc: m.Client(t), regAddr: reg.Addr, s3: newTriggerProxy(t, m.Endpoint), reg: newTriggerProxy(t, reg.Addr)}
	e.bin = buildReleng(t)
	keyDir := t.TempDir()
	var envs strings.Builder
	for i := range n {
		// Each environment signs with its own key (promote re-signs).
		if _, err := nixstore.GenerateKeyFile(fmt.Sprintf("e%d-1", i), filepath.Join(keyDir, fmt.Sprintf("signing-%d.key", i))); err != nil {
			t.Fatal(err)
		}
		e.keyFiles = append(e.keyFiles, filepath.Join(keyDir, fmt.Sprintf("signing-%d.key", i)))
		for _, b := range []string{"rel", "docs", "cache"} {
			m.MakeBucket(t, fmt.Sprintf("%s-%d", b, i), b == "cache")
		}
		remote := filepath.Join(t.TempDir(), "remote.git")
		if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", remote).CombinedOutput(); err != nil {
			t.Fatalf("git init: %v\n%s", err, out)
		}
		fmt.Fprintf(&envs, `
[environments.e%[1]d]
releases = "s3://rel-%[1]d"
docs = "s3://docs-%[1]d"
cache = "s3://cache-%[1]d?endpoint=%[2]s&scheme=http&region=us-east-1&compression=zstd&write-nar-listing=true"
s3_endpoint = "http://%[2]s"
s3_region = "us-east-1"
signing_key = %[3]s
git_remote = %[4]s

[[environments.e%[1]d.images]]
repository = "%[5]s/hello-%[1]d"
`, i, e.s3.Addr, tomlString(filepath.Join(keyDir, fmt.Sprintf("signing-%d.key", i))), tomlString(remote), e.reg.Addr)
	}
	r := testenv.NewGitRepo(t)
	if _, err := example.Write(r.Dir, false); err != nil {
		t.Fatal(err)
	}
	toml, err := os.ReadFile(filepath.Join(r.Dir, "releng.toml"))
	if err != nil {
		t.Fatal(err)
	}
	r.Write("releng.toml", strings.Replace(string(toml), "[build]", envs.String()+"\n[build]", 1))
	r.Write("version.json", "{\n    \"version\": \"1.0.0\",\n    \"official_release\": true,\n    \"release_name\": \"First Light\"\n}\n")
	r.CommitAll("example")
	r.Git("tag", "-a", "-m", "release", "1.0.0")
	r.Git("checkout", "-q", "--detach", "1.0.0")
	e.dir, e.repo = r.Dir, r
	e.cacheRoot = t.TempDir()
	e.env = append(append(append(os.Environ(), nix.Env...), m.AWSEnv()...), "RELENG_CACHE_DIR="+filepath.Join(e.cacheRoot, "build"))
	if res := e.releng(t, nil, "build"); res.code != 0 {
		t.Fatalf("build: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	return e
}

// addBigFile adds a sparse file of zeros to the version directory and
// build.json (as a copy job's output would be).
func (e *pubEnv) addBigFile(t *testing.T, mib int) {
	t.Helper()
	rel := filepath.Join(e.dir, "release")
	rec, err := artifacts.Load(rel)
	if err != nil {
		t.Fatal(err)
	}
	name := path.Join(rec.VersionDir, "hello-"+rec.Version+"-big.bin")
	f := filepath.Join(rel, filepath.FromSlash(name))
	fh, err := os.Create(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(int64(mib) << 20); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	size, sum, err := artifacts.HashFile(f)
	if err != nil {
		t.Fatal(err)
	}
	rec.Files = append(rec.Files, artifacts.File{Path: name, Size: size, SHA256: sum})
	if err := rec.Save(rel); err != nil {
		t.Fatal(err)
	}
	e.bigKey = name[len("artifacts/"):]
}

type relengResult struct {
	code           int
	stdout, stderr string
	wall           time.Duration
}

// start starts the releng binary in the project with args.
func (e *pubEnv) start(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(e.bin, append([]string{"-C", e.dir}, args...)...)
	cmd.Env = e.env
	for i, a := range args[:len(args)-1] {
		if a == "--environment" {
			// A layer cache per environment: what one knows (where to
			// mount blobs from) does not change what another sends.
			cmd.Env = append(cmd.Env, "RELENG_CACHE_DIR="+filepath.Join(e.cacheRoot, args[i+1]))
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, &errb
}

// releng runs the binary to its end; set, if not nil, is told the process
// once started (so a trigger can signal it).
func (e *pubEnv) releng(t *testing.T, set func(*os.Process), args ...string) relengResult {
	t.Helper()
	start := time.Now()
	cmd, out, errb := e.start(t, args...)
	if set != nil {
		set(cmd.Process)
	}
	err := cmd.Wait()
	res := relengResult{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String(), wall: time.Since(start)}
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		res.code = 128 + int(st.Signal())
	} else if err != nil && res.code == -1 {
		t.Fatalf("releng %v: %v", args, err)
	}
	return res
}

func (e *pubEnv) upload(t *testing.T, env string, set func(*os.Process)) relengResult {
	return e.releng(t, set, "upload", "--environment", env, "--noconfirm")
}

// finish re-runs the upload of env until it succeeds (at most 3 times),
// then verifies it; it returns the number of re-runs and the time they
// and verify took.
func (e *pubEnv) finish(t *testing.T, env string) (n int, rerun, verify time.Duration) {
	t.Helper()
	start := time.Now()
	for n = 1; ; n++ {
		res := e.upload(t, env, nil)
		if res.code == 0 {
			break
		}
		if n == 3 {
			t.Fatalf("%s: re-run %d: exit %d\n%s%s", env, n, res.code, res.stdout, res.stderr)
		}
		t.Logf("%s: re-run %d: exit %d: %s", env, n, res.code, lastLine(res.stderr))
	}
	rerun = time.Since(start)
	res := e.releng(t, nil, "verify", "--environment", env)
	if res.code != 0 {
		t.Fatalf("verify %s after the re-run: exit %d\n%s%s", env, res.code, res.stdout, res.stderr)
	}
	return n, rerun, res.wall
}

var storePathRE = regexp.MustCompile(`/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+`)

// scan checks what readers of environment i can see, straight from MinIO
// and the registry: every narinfo's NAR and references' narinfos are in
// the cache; every path the root manifest.nix names has a narinfo; every
// tag names an index (or manifest) whose manifests and blobs are all
// there. It returns the problems and what it saw.
func (e *pubEnv) scan(t *testing.T, i int) (problems []string, seen map[string]int) {
	t.Helper()
	ctx := context.Background()
	seen = map[string]int{}
	cacheBucket := fmt.Sprintf("cache-%d", i)
	has := map[string]bool{}
	var narinfos []string
	for o := range e.mc.ListObjects(ctx, cacheBucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", cacheBucket, o.Err)
		}
		has[o.Key] = true
		if strings.HasSuffix(o.Key, ".narinfo") {
			narinfos = append(narinfos, o.Key)
		}
	}
	for _, k := range narinfos {
		seen["narinfo"]++
		ni, err := nixstore.ParseNarInfo([]byte(e.object(t, cacheBucket, k)), k, nixstore.DefaultStoreDir)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: %v", cacheBucket, k, err))
			continue
		}
		if !has[ni.URL] {
			problems = append(problems, fmt.Sprintf("%s/%s names NAR %s, which is missing", cacheBucket, k, ni.URL))
		}
		for _, r := range ni.References {
			if !has[r.Hash+".narinfo"] {
				problems = append(problems, fmt.Sprintf("%s/%s refers to %s, whose narinfo is missing", cacheBucket, k, r))
			}
		}
	}
	if data := e.object(t, fmt.Sprintf("rel-%d", i), "manifest.nix"); data != "" {
		seen["root manifest.nix"]++
		for _, p := range storePathRE.FindAllString(data, -1) {
			hash := strings.TrimPrefix(p, "/nix/store/")[:32]
			if !has[hash+".narinfo"] {
				problems = append(problems, fmt.Sprintf("rel-%d/manifest.nix names %s, which has no narinfo in %s", i, p, cacheBucket))
			}
		}
	}
	problems = append(problems, e.scanRegistry(t, fmt.Sprintf("hello-%d", i), seen)...)
	return problems, seen
}

const acceptManifests = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

// scanRegistry checks every tag of repo: tag → index → manifests → blobs.
func (e *pubEnv) scanRegistry(t *testing.T, repo string, seen map[string]int) []string {
	t.Helper()
	base := "http://" + e.regAddr + "/v2/" + repo
	do := func(method, u string) (int, []byte) {
		req, _ := http.NewRequest(method, u, nil)
		req.Header.Set("Accept", acceptManifests)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	code, data := do("GET", base+"/tags/list")
	if code == http.StatusNotFound {
		return nil // nothing pushed yet
	}
	var tags struct{ Tags []string }
	if code != 200 || json.Unmarshal(data, &tags) != nil {
		t.Fatalf("%s/tags/list: %d %s", base, code, data)
	}
	var problems []string
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	}
	var manifest func(what, ref string)
	manifest = func(what, ref string) {
		code, data := do("GET", base+"/manifests/"+ref)
		if code != 200 {
			problems = append(problems, fmt.Sprintf("%s: %s:%s answers %d", what, repo, ref, code))
			return
		}
		var m struct {
			Manifests []desc `json:"manifests"`
			Config    *desc  `json:"config"`
			Layers    []desc `json:"layers"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s:%s: %v", what, repo, ref, err))
			return
		}
		for _, d := range m.Manifests {
			seen["manifest"]++
			manifest(what+" → "+d.Digest, d.Digest)
		}
		blobs := m.Layers
		if m.Config != nil {
			blobs = append(blobs, *m.Config)
		}
		for _, b := range blobs {
			seen["blob"]++
			if code, _ := do("HEAD", base+"/blobs/"+b.Digest); code != 200 {
				problems = append(problems, fmt.Sprintf("%s: blob %s answers %d", what, b.Digest, code))
			}
		}
	}
	for _, tag := range tags.Tags {
		seen["tag"]++
		manifest("tag "+repo+":"+tag, tag)
	}
	return problems
}

// killPoint is where a run is killed: at the n-th request of a class
// ("arrive" before it is forwarded, "answered" after the server did it,
// before releng hears), or once parts of the multipart upload of the big
// file carried Bytes bytes.
type killPoint struct {
	Class string // cache, image, any (any S3 or registry request), multipart
	At    string // arrive or answered (not multipart)
	N     int64
	Bytes int64
}

func (k killPoint) String() string {
	if k.Class == "multipart" {
		return fmt.Sprintf("multipart after %d MiB of parts", k.Bytes>>20)
	}
	return fmt.Sprintf("%s write #%d (%s)", k.Class, k.N, k.At)
}

// TestKillAnywhere kills `releng upload` with SIGKILL at 20 points drawn
// from a seeded RNG — 5 inside the cache push, 5 inside the image push
// (writes numbered by a reference run), 6 anywhere over the writes of a
// whole run, and 4 inside the multipart upload of a 200 MiB file added to
// the release for those (by bytes of parts seen at the proxy) — each in a
// fresh environment. At every kill point, readers see nothing that points
// at something missing (scan); a re-run then succeeds and verify passes.
func TestKillAnywhere(t *testing.T) {
	const kills = 20
	const bigMiB = 200
	start := time.Now()
	e := newPubEnv(t, kills+1)
	setup := time.Since(start)
	rng := rand.New(rand.NewPCG(13, 2026))

	// e0: the reference run, not killed, counts the writes by class.
	counts := map[string]*atomic.Int64{"cache": {}, "image": {}, "any": {}}
	count := func(ev proxyEvent) {
		if ev.At != "arrive" || !isWrite(ev.R) {
			return
		}
		counts["any"].Add(1)
		if strings.HasPrefix(ev.R.URL.Path, "/cache-") {
			counts["cache"].Add(1)
		}
		if strings.HasPrefix(ev.R.URL.Path, "/v2/") {
			counts["image"].Add(1)
		}
	}
	e.s3.setTrigger(count)
	e.reg.setTrigger(count)
	ref := e.upload(t, "e0", nil)
	if ref.code != 0 {
		t.Fatalf("reference upload: exit %d\n%s%s", ref.code, ref.stdout, ref.stderr)
	}
	if res := e.releng(t, nil, "verify", "--environment", "e0"); res.code != 0 {
		t.Fatalf("verify e0: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if problems, _ := e.scan(t, 0); len(problems) > 0 {
		t.Fatalf("scan of e0 after a whole run: %v", problems)
	}
	t.Logf("reference upload: %s; writes: cache %d, image %d, all %d", ref.wall.Round(time.Millisecond), counts["cache"].Load(), counts["image"].Load(), counts["any"].Load())

	// The kill points: 5 in the cache push, 5 in the image push, 6 over
	// every write of the run, then — with the big file added to the
	// release — 4 inside its multipart upload.
	var points []killPoint
	for _, c := range []struct {
		class string
		n     int
	}{{"cache", 5}, {"image", 5}, {"any", 6}} {
		for range c.n {
			at := "arrive"
			if rng.IntN(2) == 1 {
				at = "answered"
			}
			points = append(points, killPoint{Class: c.class, At: at, N: 1 + rng.Int64N(counts[c.class].Load())})
		}
	}
	for range 4 {
		points = append(points, killPoint{Class: "multipart", Bytes: 1 + rng.Int64N(bigMiB<<20-1)})
	}

	var survived, reruns, scanned int
	var killWall time.Duration
	for i, kp := range points {
		env := fmt.Sprintf("e%d", i+1)
		if kp.Class == "multipart" && e.bigKey == "" {
			e.addBigFile(t, bigMiB)
		}
		var (
			proc   atomic.Pointer[os.Process]
			killed atomic.Bool
			n      atomic.Int64
			parts  atomic.Int64
		)
		kill := func() {
			if p := proc.Load(); p != nil && killed.CompareAndSwap(false, true) {
				p.Signal(syscall.SIGKILL)
			}
		}
		var answered atomic.Int64 // seq of the write to kill at once answered
		answered.Store(-1)
		trigger := func(ev proxyEvent) {
			switch {
			case killed.Load():
			case kp.Class == "multipart":
				if ev.At == "body" && strings.HasPrefix(ev.R.URL.Path, "/rel-") && strings.Contains(ev.R.URL.RawQuery, "partNumber=") {
					if parts.Add(ev.Delta) >= kp.Bytes {
						kill()
					}
				}
			case ev.At == "arrive" && isWrite(ev.R) && kp.matches(ev.R):
				if n.Add(1) == kp.N {
					if kp.At == "arrive" {
						kill()
					} else {
						answered.Store(ev.Seq)
					}
				}
			case ev.At == "answered" && ev.Seq == answered.Load():
				kill()
			}
		}
		t0 := time.Now()
		e.s3.setTrigger(trigger)
		e.reg.setTrigger(trigger)
		res := e.upload(t, env, func(p *os.Process) { proc.Store(p) })
		e.s3.setTrigger(nil)
		e.reg.setTrigger(nil)
		killWall += time.Since(t0)
		e.s3.quiesce(t)
		e.reg.quiesce(t)
		if !killed.Load() {
			t.Logf("%s: %s: the run ended (exit %d) before the kill point", env, kp, res.code)
			if res.code != 0 {
				t.Errorf("%s: exit %d without a kill\n%s", env, res.code, res.stderr)
			}
		} else if res.code != 128+int(syscall.SIGKILL) {
			t.Errorf("%s: killed at %s, but exit %d", env, kp, res.code)
		}
		problems, seen := e.scan(t, i+1)
		scanned++
		if len(problems) > 0 {
			t.Errorf("%s: killed at %s: readers see dangling pointers:\n  %s", env, kp, strings.Join(problems, "\n  "))
		}
		nr, rerun, verify := e.finish(t, env)
		reruns += nr
		if nr != 1 {
			t.Errorf("%s: %d re-runs to finish, want 1", env, nr)
		}
		if problems, _ := e.scan(t, i+1); len(problems) > 0 {
			t.Errorf("%s: after the re-run: %v", env, problems)
		}
		if killed.Load() {
			survived++
		}
		t.Logf("%s: killed at %-36s after %s; seen %v; %d re-run (%s), verified (%s)", env, kp, res.wall.Round(time.Millisecond), seen,
			nr, rerun.Round(time.Millisecond), verify.Round(time.Millisecond))
	}
	t.Logf("FIGURES: %d kills at %d points (%d scans), %d re-runs, all verified; setup %s, reference upload %s, killed runs %s in all, total %s",
		survived, len(points), scanned, reruns, setup.Round(time.Second), ref.wall.Round(time.Millisecond), killWall.Round(time.Millisecond), time.Since(start).Round(time.Second))
	if survived < 18 {
		t.Errorf("only %d of %d kill points were reached", survived, len(points))
	}
}

// matches says whether a request is of the kill point's class.
func (k killPoint) matches(r *http.Request) bool {
	switch k.Class {
	case "cache":
		return strings.HasPrefix(r.URL.Path, "/cache-")
	case "image":
		return strings.HasPrefix(r.URL.Path, "/v2/")
	}
	return true
}
