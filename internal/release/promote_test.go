package release

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/signing"
	"github.com/releng-project/releng/internal/testenv"
)

// TestPromoteSigned: staging and production share a release key (and
// nothing else: buckets, cache key, repository and git remote differ).
// After an upload to staging, release/artifacts and release/images are
// removed — promote needs neither — and promote to production passes its
// read-back, with production's SHA256SUMS.sig accepted by ssh-keygen -Y
// verify and its image tags by cosign verify.
func TestPromoteSigned(t *testing.T) {
	testenv.LookPath(t, "ssh-keygen", "apt-get install -y openssh-client")
	cosign := testenv.Cosign(t)
	m := testenv.StartMinIO(t)
	reg := testenv.StartRegistry(t)
	for _, b := range []string{"releases", "docs", "cache", "prod-releases", "prod-docs", "prod-cache"} {
		m.MakeBucket(t, b, strings.HasSuffix(b, "cache"))
	}
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	keyDir := t.TempDir()
	relKey := filepath.Join(keyDir, "release.key")
	files, pub, err := signing.GenerateFiles(relKey, "hello-release")
	if err != nil {
		t.Fatal(err)
	}
	prodRemote := filepath.Join(t.TempDir(), "prod.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", prodRemote).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	env := `[environments.staging]
releases = "s3://releases"
docs = "s3://docs"
cache = "s3://cache?endpoint=ENDPOINT&scheme=http&region=us-east-1&compression=zstd"
s3_endpoint = "http://ENDPOINT"
s3_region = "us-east-1"
signing_key = "KEYDIR/staging.key"
release_key = "KEYDIR/release.key"
git_remote = "REMOTE"

[[environments.staging.images]]
repository = "REGISTRY/staging/hello"

[environments.production]
confirm = false
releases = "s3://prod-releases"
docs = "s3://prod-docs"
cache = "s3://prod-cache?endpoint=ENDPOINT&scheme=http&region=us-east-1&compression=zstd&write-nar-listing=true"
s3_endpoint = "http://ENDPOINT"
s3_region = "us-east-1"
signing_key = "KEYDIR/production.key"
release_key = "KEYDIR/release.key"
git_remote = "PRODREMOTE"

[[environments.production.images]]
repository = "REGISTRY/hello"

[build]`
	env = strings.NewReplacer("ENDPOINT", m.Endpoint, "KEYDIR", keyDir, "REGISTRY", reg.Addr, "PRODREMOTE", prodRemote).Replace(env)
	r, nix := exampleRepo(t, nil)
	r.Git("checkout", "-q", "main")
	r.Write("releng.toml", strings.Replace(exampleToml(""), "[build]", strings.Replace(env, "REMOTE", r.Remote, 1), 1))
	r.CommitAll("environments")
	r.Git("-c", "gpg.format=ssh", "-c", "user.signingKey="+relKey, "tag", "-s", "-f", "-m", "release: 1.0.0", "1.0.0")
	r.Git("checkout", "-q", "--detach", "1.0.0")
	genKey(t, filepath.Join(keyDir, "staging.key"))
	genKey(t, filepath.Join(keyDir, "production.key"))
	if _, log, err := build(t, r, nix, BuildOptions{}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if _, log, err := runUpload(t, r, nix, UploadOptions{Environment: "staging", NoConfirm: true}); err != nil {
		t.Fatalf("upload: %v\n%s", err, log)
	}
	for _, d := range []string{"artifacts", "images"} {
		if err := os.RemoveAll(filepath.Join(r.Dir, "release", d)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	rep, err := Promote(context.Background(), p, PromoteOptions{From: "staging", To: "production", Run: &runctx.Run{Events: logEvents(&log)}})
	if err != nil {
		t.Fatalf("promote: %v\n%s", err, log.String())
	}
	if rep.Verify == nil || rep.Verify.Failed != 0 || len(rep.Verify.Checks) < 20 {
		t.Fatalf("promote's read-back: %+v", rep.Verify)
	}

	// Production's signatures, checked by the stock tools.
	c := m.Client(t)
	get := func(key string) []byte {
		obj, err := c.GetObject(context.Background(), "prod-releases", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(obj); err != nil {
			t.Fatalf("get prod-releases/%s: %v", key, err)
		}
		return b.Bytes()
	}
	dir := t.TempDir()
	sig := filepath.Join(dir, "SHA256SUMS.sig")
	os.WriteFile(sig, get("hello/hello-1.0.0/SHA256SUMS.sig"), 0o644)
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("hello-release "+pub.String()+"\n"), 0o644)
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "hello-release", "-n", "file", "-s", sig)
	cmd.Stdin = bytes.NewReader(get("hello/hello-1.0.0/SHA256SUMS"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ssh-keygen -Y verify of production's SHA256SUMS.sig: %v\n%s", err, out)
	}
	for _, tag := range []string{"1.0.0", "1.0"} {
		cmd := exec.Command(cosign, "verify", "--key", files.Cosign, "--insecure-ignore-tlog", "--allow-insecure-registry", reg.Addr+"/hello:"+tag)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cosign verify %s/hello:%s: %v\n%s", reg.Addr, tag, err, out)
		}
	}
	// The tag is on production's remote, signed.
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", prodRemote, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	vt := exec.Command("git", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-tag", "1.0.0")
	vt.Dir = clone
	if out, err := vt.CombinedOutput(); err != nil {
		t.Errorf("git verify-tag on a clone of production's remote: %v\n%s", err, out)
	}
}
