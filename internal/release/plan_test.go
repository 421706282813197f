package release

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/testenv"
)

// planEnv is the example project published to MinIO, a registry and a
// bare git remote, with recording proxies in front of MinIO and the
// registry.
type planEnv struct {
	r       *testenv.GitRepo
	nix     *testenv.Nix
	s3, reg *buckettest.Proxy
	regAddr string
}

func newPlanEnv(t *testing.T) *planEnv {
	m := testenv.StartMinIO(t)
	reg := testenv.StartRegistry(t)
	for _, b := range []string{"releases", "docs", "cache"} {
		m.MakeBucket(t, b, b == "cache")
	}
	e := &planEnv{s3: buckettest.NewProxy(t, m.Endpoint), reg: buckettest.NewProxy(t, reg.Addr)}
	e.regAddr = e.reg.Addr
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	keyDir := t.TempDir()
	env := fmt.Sprintf(`[environments.staging]
releases = "s3://releases"
docs = "s3://docs"
cache = "s3://cache?endpoint=%[1]s&scheme=http&region=us-east-1&compression=zstd&write-nar-listing=true"
s3_endpoint = "http://%[1]s"
s3_region = "us-east-1"
signing_key = "%[2]s/staging.key"
git_remote = "%[4]s"

[[environments.staging.images]]
repository = "%[3]s/hello"

[build]`, e.s3.Addr, keyDir, e.regAddr, "REMOTE")
	e.r, e.nix = exampleRepo(t, map[string]string{"releng.toml": strings.Replace(exampleToml(""), "[build]", env, 1)})
	// The bare remote exampleRepo made is the environment's git remote.
	toml := strings.Replace(exampleToml(""), "[build]", strings.Replace(env, "REMOTE", e.r.Remote, 1), 1)
	e.r.Git("checkout", "-q", "main")
	e.r.Write("releng.toml", toml)
	e.r.CommitAll("environment")
	e.r.Git("tag", "-f", "-a", "-m", "release", "1.0.0")
	e.r.Git("checkout", "-q", "--detach", "1.0.0")
	genKey(t, filepath.Join(keyDir, "staging.key"))
	if _, log, err := build(t, e.r, e.nix, BuildOptions{}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	return e
}

// sentS3 lists the objects written through the S3 proxy, as "bucket/key".
func sentS3(p *buckettest.Proxy) []string {
	seen := map[string]bool{}
	for _, r := range p.Requests() {
		if (r.Method == "PUT" || (r.Method == "POST" && strings.Contains(r.RawQuery, "uploadId"))) && !strings.Contains(r.RawQuery, "partNumber") {
			seen[strings.TrimPrefix(r.Path, "/")] = true
		}
		if r.Method == "DELETE" {
			seen["delete "+strings.TrimPrefix(r.Path, "/")] = true
		}
	}
	return sortedSet(seen)
}

// sentRegistry lists the blobs (by digest) and manifests (by digest or
// tag) written through the registry proxy.
func sentRegistry(p *buckettest.Proxy) []string {
	seen := map[string]bool{}
	for _, r := range p.Requests() {
		q, _ := url.ParseQuery(r.RawQuery)
		switch {
		case r.Method == "PUT" && strings.Contains(r.Path, "/blobs/uploads/") && q.Get("digest") != "":
			seen["blob "+q.Get("digest")] = true
		case r.Method == "POST" && q.Get("mount") != "":
			seen["blob "+q.Get("mount")] = true
		case r.Method == "PUT" && strings.Contains(r.Path, "/manifests/"):
			seen["manifest "+r.Path[strings.LastIndex(r.Path, "/")+1:]] = true
		}
	}
	return sortedSet(seen)
}

// planned lists what the plans send, in the proxies' terms.
func planned(plans []*plan.Plan) (s3 []string, reg []string, git []string) {
	s3Set, regSet, gitSet := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, pl := range plans {
		for _, o := range pl.Objects {
			if !o.Sends() && o.Why != plan.Delete {
				continue
			}
			switch {
			case strings.HasPrefix(o.Dest, "s3://"):
				k := strings.TrimPrefix(o.Dest, "s3://") + "/" + o.Key
				if o.Why == plan.Delete {
					k = "delete " + k
				}
				s3Set[k] = true
			case o.Kind == plan.KindRef:
				gitSet[o.Key] = true
			default:
				regSet[strings.Replace(o.Kind, "index", "manifest", 1)+" "+o.Key] = true
			}
		}
	}
	return sortedSet(s3Set), sortedSet(regSet), sortedSet(gitSet)
}

func sortedSet(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (e *planEnv) open(t *testing.T) *project.Project {
	p, err := project.Open(project.Options{Dir: e.r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// s3Bucket opens a bucket of the environment's MinIO directly.
func (e *planEnv) s3Bucket(t *testing.T, p *project.Project, which string) bucket.Bucket {
	tg, err := OpenTarget(context.Background(), p, "staging", TargetOptions{NeedCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]bucket.Bucket{"releases": tg.Releases, "docs": tg.Docs, "cache": tg.Cache}[which]
}

func mustGet(t *testing.T, b bucket.Bucket, key string) []byte {
	t.Helper()
	rc, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustPut(t *testing.T, b bucket.Bucket, key string, data []byte) {
	t.Helper()
	if _, err := b.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), bucket.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// retag points tag of the environment's image repository at the
// manifest of another tag (or digest).
func (e *planEnv) retag(t *testing.T, tag, to string) {
	t.Helper()
	src, err := name.ParseReference(e.regAddr+"/hello"+to, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewTag(e.regAddr+"/hello:"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(dst, desc); err != nil {
		t.Fatal(err)
	}
}

// TestPlansAreWhatIsSent: on a partly published environment (objects
// deleted from each bucket and the cache, an image tag moved, the git tag
// gone), the dry run's plans list exactly what the following upload sends,
// as MinIO's and the registry's proxies see it; verify then checks the
// union of the plans and passes; a re-run with nothing changed sends
// nothing and asks at most once per object.
func TestPlansAreWhatIsSent(t *testing.T) {
	e := newPlanEnv(t)
	ctx := context.Background()
	if _, log, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", NoConfirm: true}); err != nil {
		t.Fatalf("first upload: %v\n%s", err, log)
	}
	p := e.open(t)
	rel, docs, cache := e.s3Bucket(t, p, "releases"), e.s3Bucket(t, p, "docs"), e.s3Bucket(t, p, "cache")
	// Take parts of the publication away or change them.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rel.Delete(ctx, "hello/hello-1.0.0/SHA256SUMS"))
	mustPut(t, docs, "manual/hello/nightly/usage.html", []byte("corrupted"))
	mustPut(t, docs, "manual/hello/nightly/stale.html", []byte("from an older manual"))
	rec, err := artifacts.Load(p.ReleaseDir())
	must(err)
	sp, err := nixstore.ParseStorePath(nixstore.DefaultStoreDir, rec.Manifest["x86_64-linux"])
	must(err)
	ni, err := binarycache.FetchBody(ctx, cache, binarycache.NarInfoKey(sp), 1<<20)
	must(err)
	info, err := nixstore.ParseNarInfo(ni, "narinfo", nixstore.DefaultStoreDir)
	must(err)
	must(cache.Delete(ctx, info.URL))
	e.retag(t, "1.0", "@"+rec.Images[0].Manifest)
	if out, err := exec.Command("git", "--git-dir", e.r.Remote, "tag", "-d", "1.0.0").CombinedOutput(); err != nil {
		t.Fatalf("delete the remote tag: %v\n%s", err, out)
	}

	e.s3.Reset()
	e.reg.Reset()
	dry, log, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, log)
	}
	if got := sentS3(e.s3); len(got) > 0 {
		t.Errorf("the dry run wrote to MinIO: %v", got)
	}
	if got := sentRegistry(e.reg); len(got) > 0 {
		t.Errorf("the dry run wrote to the registry: %v", got)
	}
	wantS3, wantReg, wantGit := planned(dry.Plans)
	if !slices.Contains(wantS3, "releases/hello/hello-1.0.0/SHA256SUMS") || !slices.Contains(wantS3, "cache/"+info.URL) ||
		!slices.Contains(wantS3, "delete docs/manual/hello/nightly/stale.html") || !slices.Equal(wantGit, []string{"refs/tags/1.0.0"}) {
		t.Errorf("the plans miss what was taken away: s3 %v, git %v", wantS3, wantGit)
	}

	e.s3.Reset()
	e.reg.Reset()
	up, log, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err != nil {
		t.Fatalf("repair upload: %v\n%s", err, log)
	}
	if got := sentS3(e.s3); !slices.Equal(got, wantS3) {
		t.Errorf("MinIO saw\n  %v\nthe plans said\n  %v", got, wantS3)
	}
	if got := sentRegistry(e.reg); !slices.Equal(got, wantReg) {
		t.Errorf("the registry saw\n  %v\nthe plans said\n  %v", got, wantReg)
	}
	if s := step(up, "git"); s.Sent != 1 {
		t.Errorf("git step: %+v", s)
	}
	vr := verify(t, e.r, "staging")
	if f := failures(vr); len(f) > 0 {
		t.Errorf("verify after the repair: %v", f)
	}
	// verify checks the union of the plans (made again now: everything is
	// there): one check per object of the bucket, image and git stages, one
	// per store path of the cache.
	now, _, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var want int
	for _, pl := range now.Plans {
		switch {
		case pl.Skipped != "":
		case pl.Stage == "cache":
			want += len(pl.State.(*binarycache.Plan).Paths())
		default:
			want += len(pl.Objects)
		}
		if tot := pl.Totals(); tot.Send+tot.Delete != 0 {
			t.Errorf("after the repair, %s still plans %s", pl.Stage, tot)
		}
	}
	if len(vr.Checks) != want {
		t.Errorf("verify made %d checks, the plans hold %d objects", len(vr.Checks), want)
	}

	// Nothing changed: nothing is sent, and at most one request per object.
	e.s3.Reset()
	e.reg.Reset()
	again, log, err := runUpload(t, e.r, e.nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err != nil {
		t.Fatalf("third upload: %v\n%s", err, log)
	}
	if got := sentS3(e.s3); len(got) > 0 {
		t.Errorf("nothing changed, yet MinIO got writes: %v", got)
	}
	if got := sentRegistry(e.reg); len(got) > 0 {
		t.Errorf("nothing changed, yet the registry got writes: %v", got)
	}
	objects := 0
	for _, pl := range again.Plans {
		objects += len(pl.Objects)
	}
	if n := len(e.s3.Requests()); n > objects {
		t.Errorf("nothing changed: %d requests to MinIO for %d objects", n, objects)
	}

	// Tamper with one NAR byte, one narinfo signature, one docs object and
	// one image tag: verify names each, through the one cache and registry
	// readers.
	nar := mustGet(t, cache, info.URL)
	nar[len(nar)/2] ^= 0xff
	mustPut(t, cache, info.URL, nar)
	var other nixstore.StorePath
	for _, pl := range now.Plans {
		if pl.Stage == "cache" {
			for _, path := range pl.State.(*binarycache.Plan).Paths() {
				if path != sp && strings.HasSuffix(path.Name, ".drv") {
					other = path
				}
			}
		}
	}
	niKey := binarycache.NarInfoKey(other)
	text := string(mustGet(t, cache, niKey))
	i := strings.Index(text, "Sig: ")
	j := i + strings.Index(text[i:], "\n")
	mustPut(t, cache, niKey, []byte(text[:j-4]+"AAA="+text[j:]))
	mustPut(t, docs, "manual/hello/nightly/index.html", []byte("defaced"))
	e.retag(t, "1.0.0", "@"+rec.Images[0].Manifest)
	f := failures(verify(t, e.r, "staging"))
	for _, want := range []string{info.URL, niKey + ": no valid signature", "manual/hello/nightly/index.html", "hello index 1.0.0"} {
		found := false
		for _, line := range f {
			found = found || strings.Contains(line, want)
		}
		if !found {
			t.Errorf("verify does not name %q:\n  %s", want, strings.Join(f, "\n  "))
		}
	}
	if len(f) != 4 {
		t.Errorf("verify after 4 tampers: %d failures:\n  %s", len(f), strings.Join(f, "\n  "))
	}
}
