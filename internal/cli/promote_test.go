package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

// bucketContents maps every key of a MinIO bucket to the SHA-256 of its bytes.
func (e *pubEnv) bucketContents(t *testing.T, bucket string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for o := range e.mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", bucket, o.Err)
		}
		obj, err := e.mc.GetObject(ctx, bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, obj); err != nil {
			t.Fatalf("get %s/%s: %v", bucket, o.Key, err)
		}
		obj.Close()
		out[o.Key] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

// skopeoDigest is the digest of what skopeo reads at ref (its raw manifest).
func skopeoDigest(t *testing.T, ref string) string {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	sum := sha256.Sum256(out)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestPromote: promote from e0 to e1 (other buckets, another signing key,
// another repository and git remote) refuses, sending nothing, while e0
// does not hold the release; once e0 does, a promote killed with SIGKILL
// part way and run again ends in e1 holding the same NARs byte for byte
// with narinfos signed by e1's key alone, the same image digests at every
// tag (as skopeo reads them), and verify of e1 passing; a further promote
// sends nothing; other bytes under a release name are refused unless
// --force.
func TestPromote(t *testing.T) {
	testenv.LookPath(t, "skopeo", "apt-get install skopeo")
	e := newPubEnv(t, 2)
	e1Empty := func(when string) {
		t.Helper()
		for _, b := range []string{"rel-1", "docs-1", "cache-1"} {
			if got := e.bucketContents(t, b); len(got) > 0 {
				t.Fatalf("%s: %s holds %d objects, want none", when, b, len(got))
			}
		}
		if p := e.scanRegistry(t, "hello-1", map[string]int{}); len(p) > 0 {
			t.Fatalf("%s: %v", when, p)
		}
		seen := map[string]int{}
		e.scanRegistry(t, "hello-1", seen)
		if seen["tag"] > 0 {
			t.Fatalf("%s: hello-1 has tags", when)
		}
	}

	// Nothing published to e0 yet: refused before anything is sent.
	res := e.releng(t, nil, "promote", "--from", "e0", "--to", "e1", "--noconfirm")
	if res.code != 1 || !strings.Contains(res.stderr, "e0 does not hold 1.0.0") {
		t.Fatalf("promote of an unpublished version: exit %d, want 1 naming e0\n%s", res.code, res.stderr)
	}
	e1Empty("after the refused promote")

	if res := e.upload(t, "e0", nil); res.code != 0 {
		t.Fatalf("upload e0: exit %d\n%s", res.code, res.stderr)
	}
	res = e.releng(t, nil, "promote", "--from", "e0", "--to", "e1", "--dry-run")
	if res.code != 0 {
		t.Fatalf("promote --dry-run: exit %d\n%s", res.code, res.stderr)
	}
	t.Logf("promote --dry-run:\n%s", res.stdout)
	e1Empty("after the dry run")

	// Killed at the 15th write to e1, then run again.
	var proc atomic.Pointer[os.Process]
	var writes atomic.Int64
	var killed atomic.Bool
	trigger := func(ev proxyEvent) {
		if ev.At != "arrive" || !isWrite(ev.R) || !(strings.Contains(ev.R.URL.Path, "-1/") || strings.Contains(ev.R.URL.Path, "hello-1/")) {
			return
		}
		if writes.Add(1) == 15 {
			if p := proc.Load(); p != nil && killed.CompareAndSwap(false, true) {
				p.Signal(syscall.SIGKILL)
			}
		}
	}
	e.s3.setTrigger(trigger)
	e.reg.setTrigger(trigger)
	res = e.releng(t, func(p *os.Process) { proc.Store(p) }, "promote", "--from", "e0", "--to", "e1", "--noconfirm")
	e.s3.setTrigger(nil)
	e.reg.setTrigger(nil)
	e.s3.quiesce(t)
	e.reg.quiesce(t)
	if !killed.Load() || res.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("promote was not killed (exit %d, %d writes)\n%s", res.code, writes.Load(), res.stderr)
	}
	if problems, _ := e.scan(t, 1); len(problems) > 0 {
		t.Errorf("after the kill, readers of e1 see: %v", problems)
	}
	res = e.releng(t, nil, "promote", "--from", "e0", "--to", "e1", "--noconfirm")
	if res.code != 0 {
		t.Fatalf("promote after the kill: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := e.releng(t, nil, "verify", "--environment", "e1"); res.code != 0 {
		t.Fatalf("verify e1: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if problems, _ := e.scan(t, 1); len(problems) > 0 {
		t.Errorf("readers of e1 see: %v", problems)
	}

	// The cache: the same NARs, narinfos signed by e1's key alone.
	c0, c1 := e.bucketContents(t, "cache-0"), e.bucketContents(t, "cache-1")
	nars := 0
	for k, sum := range c0 {
		if strings.HasPrefix(k, "nar/") {
			nars++
			if c1[k] != sum {
				t.Errorf("cache-1/%s: sha256 %q, cache-0 has %s", k, c1[k], sum)
			}
		}
	}
	narinfos := 0
	for k := range c1 {
		if !strings.HasSuffix(k, ".narinfo") {
			continue
		}
		narinfos++
		obj, err := e.mc.GetObject(context.Background(), "cache-1", k, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(obj)
		obj.Close()
		ni, err := nixstore.ParseNarInfo(data, k, nixstore.DefaultStoreDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ni.Sigs) != 1 || !strings.HasPrefix(ni.Sigs[0], "e1-1:") {
			t.Errorf("cache-1/%s: signatures %v, want e1-1's alone", k, ni.Sigs)
		}
		if _, ok := c0[k]; !ok {
			t.Errorf("cache-1/%s: not in cache-0", k)
		}
	}
	if nars == 0 || narinfos == 0 {
		t.Fatalf("cache-0 has %d NARs, cache-1 %d narinfos", nars, narinfos)
	}
	// The buckets: the same objects.
	for _, b := range []string{"rel", "docs"} {
		b0, b1 := e.bucketContents(t, b+"-0"), e.bucketContents(t, b+"-1")
		if fmt.Sprint(b0) != fmt.Sprint(b1) {
			t.Errorf("%s-1 differs from %s-0:\n%v\n%v", b, b, keysOf(b1), keysOf(b0))
		}
	}
	// The images: the same index at every tag, as skopeo reads it.
	for _, tag := range []string{"1.0.0", "1.0", "latest"} {
		d0, d1 := skopeoDigest(t, e.regAddr+"/hello-0:"+tag), skopeoDigest(t, e.regAddr+"/hello-1:"+tag)
		if d0 != d1 {
			t.Errorf("tag %s: hello-1 has %s, hello-0 %s", tag, d1, d0)
		}
	}

	// Again: nothing to send.
	res = e.releng(t, nil, "--json", "promote", "--from", "e0", "--to", "e1", "--noconfirm")
	if res.code != 0 {
		t.Fatalf("promote again: exit %d\n%s", res.code, res.stderr)
	}
	var rep struct {
		Steps []struct {
			Step string `json:"step"`
			Sent int    `json:"sent"`
		} `json:"steps"`
		Verify struct {
			Failed int `json:"failed"`
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("promote --json: %v\n%s", err, res.stdout)
	}
	for _, s := range rep.Steps {
		if s.Sent != 0 {
			t.Errorf("promote again: step %s sent %d objects, want 0", s.Step, s.Sent)
		}
	}

	// Other bytes under a name of the release: refused, then --force.
	key := "hello/hello-1.0.0/hello-1.0.0.tar.gz.sha256"
	if _, err := e.mc.PutObject(context.Background(), "rel-1", key, strings.NewReader("not it"), 6, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	res = e.releng(t, nil, "promote", "--from", "e0", "--to", "e1", "--noconfirm")
	if res.code != 1 || !strings.Contains(res.stderr, "--force") || !strings.Contains(res.stderr, key) {
		t.Fatalf("promote over other bytes: exit %d, want 1 naming %s and --force\n%s", res.code, key, res.stderr)
	}
	res = e.releng(t, nil, "promote", "--from", "e0", "--to", "e1", "--noconfirm", "--force")
	if res.code != 0 || !strings.Contains(res.stderr, "overwriting") {
		t.Fatalf("promote --force: exit %d\n%s", res.code, res.stderr)
	}
	if got := e.bucketContents(t, "rel-1")[key]; got != e.bucketContents(t, "rel-0")[key] {
		t.Errorf("--force did not restore %s", key)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestPromoteResumesLargeObject: a promote killed with SIGKILL while a
// large object of the version directory goes up in parts resumes it: the
// re-run sends only the parts e1 had not stored, and e1 verifies.
func TestPromoteResumesLargeObject(t *testing.T) {
	const mib = 160
	e := newPubEnv(t, 2)
	e.addBigFile(t, mib)
	if res := e.upload(t, "e0", nil); res.code != 0 {
		t.Fatalf("upload e0: exit %d\n%s", res.code, res.stderr)
	}
	isPart := func(ev proxyEvent) bool {
		return ev.At == "body" && strings.HasPrefix(ev.R.URL.Path, "/rel-1/") && strings.Contains(ev.R.URL.RawQuery, "partNumber=")
	}
	var proc atomic.Pointer[os.Process]
	var sent atomic.Int64
	var killed atomic.Bool
	e.s3.setTrigger(func(ev proxyEvent) {
		if isPart(ev) && sent.Add(ev.Delta) >= 100<<20 {
			if p := proc.Load(); p != nil && killed.CompareAndSwap(false, true) {
				p.Signal(syscall.SIGKILL)
			}
		}
	})
	res := e.releng(t, func(p *os.Process) { proc.Store(p) }, "promote", "--from", "e0", "--to", "e1", "--noconfirm")
	e.s3.setTrigger(nil)
	e.s3.quiesce(t)
	if !killed.Load() || res.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("promote was not killed in the big file's parts (exit %d, %d part bytes)\n%s", res.code, sent.Load(), res.stderr)
	}
	var resent atomic.Int64
	e.s3.setTrigger(func(ev proxyEvent) {
		if isPart(ev) {
			resent.Add(ev.Delta)
		}
	})
	res = e.releng(t, nil, "promote", "--from", "e0", "--to", "e1", "--noconfirm")
	e.s3.setTrigger(nil)
	if res.code != 0 {
		t.Fatalf("promote after the kill: exit %d\n%s", res.code, res.stderr)
	}
	t.Logf("killed after %d MiB of parts; the re-run sent %d MiB of parts of the %d MiB file", sent.Load()>>20, resent.Load()>>20, mib)
	if r := resent.Load(); r <= 0 || r > mib<<20*3/4 {
		t.Errorf("the re-run sent %d bytes of parts: want some, and at most 3/4 of the %d MiB file (it resumes)", r, mib)
	}
	if got, want := e.bucketContents(t, "rel-1")[e.bigKey], e.bucketContents(t, "rel-0")[e.bigKey]; got != want {
		t.Errorf("rel-1/%s: sha256 %s, rel-0 has %s", e.bigKey, got, want)
	}
	if res := e.releng(t, nil, "verify", "--environment", "e1"); res.code != 0 {
		t.Fatalf("verify e1: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
