package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

// release builds and uploads version ver of the example to e0, from a
// commit on main tagged ver.
func (e *pubEnv) release(t *testing.T, ver string) {
	t.Helper()
	r := e.repo
	r.Git("checkout", "-q", "main")
	r.Write("version.json", fmt.Sprintf("{\n    \"version\": %q,\n    \"official_release\": true,\n    \"release_name\": \"Next\"\n}\n", ver))
	r.CommitAll("release " + ver)
	r.Git("tag", "-a", "-m", "release", ver)
	r.Git("checkout", "-q", "--detach", ver)
	if res := e.releng(t, nil, "build"); res.code != 0 {
		t.Fatalf("build %s: exit %d\n%s", ver, res.code, res.stderr)
	}
	if res := e.upload(t, "e0", nil); res.code != 0 {
		t.Fatalf("upload %s: exit %d\n%s", ver, res.code, res.stderr)
	}
}

// object reads an object of e's MinIO ("" when there is none).
func (e *pubEnv) object(t *testing.T, bucket, key string) string {
	t.Helper()
	obj, err := e.mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return ""
		}
		t.Fatal(err)
	}
	return string(data)
}

// prefixContents is contents' entries below prefix, relative to it.
func prefixContents(contents map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range contents {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}

// TestYank: 1.0.0 then 1.1.0 published to e0; yanking 1.1.0 (killed with
// SIGKILL part way, then run again) points the root manifest.nix, the
// latest tag and the stable manual back at 1.0.0, whose paths stock Nix
// still substitutes from the cache; --undo restores 1.1.0 everywhere. An
// unpublished version and the only release are refused, changing nothing.
func TestYank(t *testing.T) {
	testenv.LookPath(t, "skopeo", "apt-get install skopeo")
	e := newPubEnv(t, 1)
	yank := func(set func(*os.Process), args ...string) relengResult {
		return e.releng(t, set, append([]string{"yank", "--environment", "e0", "--noconfirm"}, args...)...)
	}
	res := yank(nil, "9.9.9", "--reason", "broken")
	if res.code != 1 || !strings.Contains(res.stderr, "not published") {
		t.Fatalf("yank of an unpublished version: exit %d\n%s", res.code, res.stderr)
	}
	if res := e.upload(t, "e0", nil); res.code != 0 {
		t.Fatalf("upload 1.0.0: exit %d\n%s", res.code, res.stderr)
	}
	before := e.bucketContents(t, "rel-0")
	res = yank(nil, "1.0.0", "--reason", "broken")
	if res.code != 1 || !strings.Contains(res.stderr, "only stable release") {
		t.Fatalf("yank of the only release: exit %d, want 1 saying it is the only one\n%s", res.code, res.stderr)
	}
	if after := e.bucketContents(t, "rel-0"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the refused yank changed rel-0")
	}

	e.release(t, "1.1.0")
	img := func(tag string) string { return skopeoDigest(t, e.regAddr+"/hello-0:"+tag) }
	v100, v110 := img("1.0.0"), img("1.1.0")
	man100, man110 := e.object(t, "rel-0", "hello/hello-1.0.0/manifest.nix"), e.object(t, "rel-0", "hello/hello-1.1.0/manifest.nix")
	docs := e.bucketContents(t, "docs-0")
	doc100, doc110 := prefixContents(docs, "manual/hello/1.0/"), prefixContents(docs, "manual/hello/1.1/")
	if img("latest") != v110 || e.object(t, "rel-0", "manifest.nix") != man110 || fmt.Sprint(prefixContents(docs, "manual/hello/stable/")) != fmt.Sprint(doc110) {
		t.Fatal("after the upload of 1.1.0, latest, manifest.nix and the stable manual are not 1.1.0's")
	}
	if fmt.Sprint(doc100) == fmt.Sprint(doc110) || man100 == man110 || v100 == v110 {
		t.Fatal("1.0.0 and 1.1.0 are not told apart by their manuals, manifests or images")
	}
	state := func() string {
		return fmt.Sprintf("manifest %q latest %s 1.1 %s stable %v", e.object(t, "rel-0", "manifest.nix"), img("latest"), img("1.1"),
			prefixContents(e.bucketContents(t, "docs-0"), "manual/hello/stable/"))
	}
	published := state()

	res = yank(nil, "1.1.0", "--reason", "it eats data", "--dry-run")
	if res.code != 0 || state() != published {
		t.Fatalf("yank --dry-run: exit %d, or it changed something\n%s%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("yank --dry-run:\n%s", res.stdout)

	// Killed at its third write, then run again.
	var proc atomic.Pointer[os.Process]
	var writes atomic.Int64
	var killed atomic.Bool
	trigger := func(ev proxyEvent) {
		if ev.At == "arrive" && isWrite(ev.R) && writes.Add(1) == 3 {
			if p := proc.Load(); p != nil && killed.CompareAndSwap(false, true) {
				p.Signal(syscall.SIGKILL)
			}
		}
	}
	e.s3.setTrigger(trigger)
	e.reg.setTrigger(trigger)
	res = yank(func(p *os.Process) { proc.Store(p) }, "1.1.0", "--reason", "it eats data")
	e.s3.setTrigger(nil)
	e.reg.setTrigger(nil)
	e.s3.quiesce(t)
	e.reg.quiesce(t)
	if !killed.Load() || res.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("yank was not killed (exit %d, %d writes)\n%s", res.code, writes.Load(), res.stderr)
	}
	if res = yank(nil, "1.1.0", "--reason", "it eats data"); res.code != 0 {
		t.Fatalf("yank after the kill: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if got := e.object(t, "rel-0", "manifest.nix"); got != man100 {
		t.Errorf("root manifest.nix after the yank:\n%s\nwant 1.0.0's:\n%s", got, man100)
	}
	if got := img("latest"); got != v100 {
		t.Errorf("latest is %s after the yank, want 1.0.0's %s", got, v100)
	}
	if got := img("1.1.0"); got != v110 {
		t.Errorf("1.1.0's own tag moved to %s", got)
	}
	if got := prefixContents(e.bucketContents(t, "docs-0"), "manual/hello/stable/"); fmt.Sprint(got) != fmt.Sprint(doc100) {
		t.Errorf("the stable manual is not 1.0.0's after the yank")
	}
	var rec struct {
		Version, Reason string
		Moved           []struct{ What, Where, To string }
	}
	if err := json.Unmarshal([]byte(e.object(t, "rel-0", "hello/hello-1.1.0/yanked.json")), &rec); err != nil || rec.Reason != "it eats data" || len(rec.Moved) != 3 {
		t.Errorf("yanked.json: %+v (%v), want the reason and 3 moves", rec, err)
	}
	if e.object(t, "rel-0", "hello/hello-1.1.0/manifest.nix") != man110 {
		t.Error("the yank changed 1.1.0's version directory")
	}
	// Stock Nix still substitutes 1.1.0's paths from the cache (not deleted)
	// and 1.0.0's, which manifest.nix names again.
	nix := testenv.SetupNix(t)
	pub := e.publicKey(t, 0)
	for _, man := range []string{man100, man110} {
		for _, p := range storePathRE.FindAllString(man, -1) {
			cmd := nix.Command("nix", "copy", "--from", "http://"+e.m.Endpoint+"/cache-0", "--to", filepath.Join(t.TempDir(), "chroot"),
				"--option", "require-sigs", "true", "--option", "trusted-public-keys", pub, p)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("nix copy %s from the cache: %v\n%s", p, err, out)
			}
		}
	}

	// status lists the yank in e0's journal.
	if res := e.releng(t, nil, "status"); res.code != 0 || !strings.Contains(res.stdout, "of 1.1.0: ") {
		t.Errorf("status after the yank: exit %d, want a yank line for 1.1.0\n%s", res.code, res.stdout)
	}
	// verify of the yanked version passes and says so; upload refuses it.
	if res := e.releng(t, nil, "verify", "--environment", "e0"); res.code != 0 || !strings.Contains(res.stdout, "1.1.0 is yanked (it eats data") {
		t.Errorf("verify of the yanked 1.1.0: exit %d, want 0 saying it is yanked\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := e.upload(t, "e0", nil); res.code != 1 || !strings.Contains(res.stderr, "--unyank") {
		t.Errorf("upload of the yanked 1.1.0: exit %d, want 1 naming --unyank\n%s", res.code, res.stderr)
	}

	res = yank(nil, "1.1.0", "--undo")
	if res.code != 0 {
		t.Fatalf("yank --undo: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if got := state(); got != published {
		t.Errorf("after --undo:\n%s\nwant what 1.1.0's upload published:\n%s", got, published)
	}
	if e.object(t, "rel-0", "hello/hello-1.1.0/yanked.json") != "" {
		t.Error("--undo left yanked.json")
	}
	if res = yank(nil, "1.1.0", "--undo"); res.code != 1 || !strings.Contains(res.stderr, "not yanked") {
		t.Errorf("a second --undo: exit %d, want 1 saying it is not yanked\n%s", res.code, res.stderr)
	}

	// Yanked again, then published again with upload --unyank.
	if res = yank(nil, "1.1.0", "--reason", "again"); res.code != 0 || state() == published {
		t.Fatalf("second yank: exit %d\n%s", res.code, res.stderr)
	}
	if res := e.releng(t, nil, "upload", "--environment", "e0", "--noconfirm", "--unyank"); res.code != 0 {
		t.Fatalf("upload --unyank: exit %d\n%s", res.code, res.stderr)
	}
	if got := state(); got != published || e.object(t, "rel-0", "hello/hello-1.1.0/yanked.json") != "" {
		t.Errorf("after upload --unyank:\n%s\nwant:\n%s", got, published)
	}
	if res := e.releng(t, nil, "verify", "--environment", "e0"); res.code != 0 || strings.Contains(res.stdout, "is yanked") {
		t.Errorf("verify after --unyank: exit %d\n%s", res.code, res.stdout)
	}
}

// publicKey is the Nix public key of environment i's signing key.
func (e *pubEnv) publicKey(t *testing.T, i int) string {
	t.Helper()
	data, err := os.ReadFile(e.keyFiles[i])
	if err != nil {
		t.Fatal(err)
	}
	sk, err := nixstore.ParseSecretKey(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return sk.PublicKey().String()
}
