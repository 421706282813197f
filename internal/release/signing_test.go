package release

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"golang.org/x/crypto/ssh"

	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/signing"
	"github.com/releng-project/releng/internal/testenv"
)

// keySecrets are the strings of a private key file that must never be
// written anywhere but that file: its seed (base64, hex) and the base64
// lines of the file after the first (which holds only public parts).
func keySecrets(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	seed := raw.(interface{ Seed() []byte }).Seed()
	out := []string{base64.StdEncoding.EncodeToString(seed), base64.RawStdEncoding.EncodeToString(seed), hex.EncodeToString(seed)}
	lines := strings.Split(string(data), "\n")
	for _, l := range lines[2:] {
		if len(l) > 20 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// scanForSecrets fails t when any secret is in text (named what) or in a
// file under dir.
func scanForSecrets(t *testing.T, secrets []string, dir string, texts map[string]string) {
	t.Helper()
	check := func(what, s string) {
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("the private release key is in %s", what)
				return
			}
		}
	}
	for what, s := range texts {
		check(what, s)
	}
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			check(p, string(data))
			n++
		}
		return nil
	})
	if n < 10 {
		t.Errorf("scanned only %d files under %s", n, dir)
	}
}

// TestSignedRelease: an upload to a MinIO environment with a release_key
// signs SHA256SUMS, the tag and every image index; stock tools
// (ssh-keygen, git, cosign) accept the signatures with the public key
// alone; a re-run sends none again; verify names each tampered object.
func TestSignedRelease(t *testing.T) {
	testenv.LookPath(t, "ssh-keygen", "apt-get install -y openssh-client")
	cosign := testenv.Cosign(t)
	m := testenv.StartMinIO(t)
	reg := testenv.StartRegistry(t)
	for _, b := range []string{"releases", "docs", "cache"} {
		m.MakeBucket(t, b, b == "cache")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	keyDir := t.TempDir()
	relKey := filepath.Join(keyDir, "release.key")
	files, pub, err := signing.GenerateFiles(relKey, "hello-release-staging")
	if err != nil {
		t.Fatal(err)
	}
	env := `[environments.staging]
releases = "s3://releases"
docs = "s3://docs"
cache = "s3://cache?endpoint=ENDPOINT&scheme=http&region=us-east-1&compression=zstd"
s3_endpoint = "http://ENDPOINT"
s3_region = "us-east-1"
signing_key = "KEYDIR/staging.key"
release_key = "KEYDIR/release.key"
release_public_key = "PUB"
git_remote = "REMOTE"

[[environments.staging.images]]
repository = "REGISTRY/hello"

[build]`
	env = strings.NewReplacer("ENDPOINT", m.Endpoint, "KEYDIR", keyDir, "PUB", pub.String(), "REGISTRY", reg.Addr).Replace(env)
	r, nix := exampleRepo(t, nil)
	r.Git("checkout", "-q", "main")
	r.Write("releng.toml", strings.Replace(exampleToml(""), "[build]", strings.Replace(env, "REMOTE", r.Remote, 1), 1))
	r.CommitAll("environment")
	r.Git("tag", "-f", "-a", "-m", "release", "1.0.0")
	r.Git("checkout", "-q", "--detach", "1.0.0")
	genKey(t, filepath.Join(keyDir, "staging.key"))
	if _, log, err := build(t, r, nix, BuildOptions{}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	ctx := context.Background()
	c := m.Client(t)
	bucketEmpty := func(b string) bool {
		for range c.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true}) {
			return false
		}
		return true
	}

	// A release key others may read: refused before anything is signed or sent.
	os.Chmod(relKey, 0o644)
	_, log, err := runUpload(t, r, nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err == nil || !strings.Contains(err.Error(), relKey) || !strings.Contains(err.Error(), "chmod 600 "+relKey) {
		t.Fatalf("upload with a 0644 release key: %v\n%s", err, log)
	}
	if !bucketEmpty("cache") || !bucketEmpty("releases") {
		t.Fatalf("something was published with a refused key")
	}
	os.Chmod(relKey, 0o600)

	// The tag exampleRepo made is unsigned: upload refuses it, saying how to sign it.
	_, _, err = runUpload(t, r, nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err == nil || !strings.Contains(err.Error(), "tag 1.0.0 is not signed") || !strings.Contains(err.Error(), "gpg.format=ssh") {
		t.Fatalf("upload of an unsigned tag: %v", err)
	}
	// The command the message gives signs it without moving it.
	commit := r.Git("rev-parse", "1.0.0^{commit}")
	r.Git("-c", "gpg.format=ssh", "-c", "user.signingKey="+relKey, "tag", "-s", "-f", "-m", "release: 1.0.0", "1.0.0", "1.0.0^{}")
	if got := r.Git("rev-parse", "1.0.0^{commit}"); got != commit {
		t.Fatalf("signing the tag moved it")
	}

	// --dry-run plans the signatures.
	rep, _, err := runUpload(t, r, nix, UploadOptions{Environment: "staging", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var sigs []plan.Object
	tags := map[string]string{} // image tag → index digest
	for _, pl := range rep.Plans {
		for _, o := range pl.Objects {
			if o.Kind == plan.KindSignature || strings.HasSuffix(o.Key, "SHA256SUMS.sig") {
				sigs = append(sigs, o)
			}
			if o.Kind == plan.KindIndex {
				tags[o.Key] = o.Digest
			}
		}
	}
	if len(sigs) != 2 || sigs[0].Why != plan.New || sigs[1].Why != plan.New || sigs[0].Digest == "" {
		t.Fatalf("dry run: signatures planned %+v", sigs)
	}

	rep, log, err = runUpload(t, r, nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err != nil {
		t.Fatalf("upload: %v\n%s", err, log)
	}
	vrep := verify(t, r, "staging")
	if f := failures(vrep); len(f) > 0 {
		t.Fatalf("verify: %v", f)
	}
	signedChecks := 0
	for _, ch := range vrep.Checks {
		if strings.Contains(ch.Detail, pub.Fingerprint()) {
			signedChecks++
		}
	}
	if signedChecks != 3 {
		t.Errorf("verify checked %d signatures, want 3 (SHA256SUMS, tag, index): %+v", signedChecks, vrep.Checks)
	}

	// A re-run finds every signature present and sends nothing.
	again, _, err := runUpload(t, r, nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"releases", "images", "git"} {
		if st := step(again, s); st.Sent != 0 {
			t.Errorf("re-run sent %d objects in %s", st.Sent, s)
		}
	}

	// ssh-keygen -Y verify accepts SHA256SUMS.sig, and refuses it once a
	// byte of SHA256SUMS changed.
	dl := t.TempDir()
	get := func(key string) []byte {
		o, err := c.GetObject(ctx, "releases", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		b, err := io.ReadAll(o)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return b
	}
	put := func(key string, b []byte) {
		if _, err := c.PutObject(ctx, "releases", key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const sumsKey = "hello/hello-1.0.0/SHA256SUMS"
	sums := get(sumsKey)
	os.WriteFile(filepath.Join(dl, "SHA256SUMS.sig"), get(sumsKey+".sig"), 0o644)
	allowed := filepath.Join(dl, "allowed_signers")
	os.WriteFile(allowed, []byte("hello-release "+pub.String()+"\n"), 0o644)
	sshVerify := func(content []byte) error {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "hello-release", "-n", "file", "-s", filepath.Join(dl, "SHA256SUMS.sig"))
		cmd.Stdin = bytes.NewReader(content)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("ssh-keygen -Y verify: %s", out)
		}
		return err
	}
	if err := sshVerify(sums); err != nil {
		t.Errorf("ssh-keygen -Y verify refuses the published SHA256SUMS.sig: %v", err)
	}
	tampered := bytes.Clone(sums)
	tampered[10] ^= 1
	if err := sshVerify(tampered); err == nil {
		t.Errorf("ssh-keygen -Y verify accepts SHA256SUMS with a byte changed")
	}

	// git verify-tag, in a clone of the remote, accepts the tag.
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", r.Remote, clone).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	vt := exec.Command("git", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-tag", "1.0.0")
	vt.Dir = clone
	if out, err := vt.CombinedOutput(); err != nil {
		t.Errorf("git verify-tag on a clone of the remote: %v\n%s", err, out)
	}

	// cosign verify accepts every image tag's signature with the PEM public key.
	if len(tags) < 2 {
		t.Fatalf("image tags planned: %v", tags)
	}
	for tag := range tags {
		cmd := exec.Command(cosign, "verify", "--key", files.Cosign, "--insecure-ignore-tlog", "--allow-insecure-registry", reg.Addr+"/hello:"+tag)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), tags[tag]) {
			t.Errorf("cosign verify %s:%s: %v\n%s", reg.Addr+"/hello", tag, err, out)
		}
	}

	// The private key is in no output, journal or file under release/.
	scanForSecrets(t, keySecrets(t, relKey), filepath.Join(r.Dir, "release"), map[string]string{"the upload's output": log, "verify's report": fmt.Sprintf("%+v", vrep)})

	// verify names each tampered object.
	mustFail := func(what string, want ...string) {
		t.Helper()
		f := failures(verify(t, r, "staging"))
		joined := strings.Join(f, "\n")
		for _, w := range want {
			if !strings.Contains(joined, w) {
				t.Errorf("%s: verify does not name %q: %v", what, w, f)
			}
		}
		if len(f) == 0 {
			t.Errorf("%s: verify passes", what)
		}
	}
	put(sumsKey, tampered)
	mustFail("a byte of SHA256SUMS changed", "/"+sumsKey+":", "/"+sumsKey+".sig: not a valid signature")
	put(sumsKey, sums)

	remoteGit := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"--git-dir", r.Remote}, args...)...)
		cmd.Env = append(os.Environ(), testenv.GitEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	remoteGit("tag", "-f", "-a", "-m", "release: 1.0.0", "1.0.0", commit)
	mustFail("the tag replaced by an unsigned one", "refs/tags/1.0.0 on "+r.Remote+" (signature): tag object", "not signed")
	r.Git("push", "-q", "-f", r.Remote, "refs/tags/1.0.0")

	var index string
	for _, d := range tags {
		index = d
	}
	target, err := registry.Open(ctx, reg.Addr+"/hello", registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := signing.GenerateFiles(filepath.Join(t.TempDir(), "other.key"), "other")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := signing.LoadPrivateKeyFile(other.Private, false)
	forged, _ := otherKey.CosignSign(reg.Addr+"/hello", index)
	if err := signing.PushCosign(ctx, target, forged); err != nil {
		t.Fatal(err)
	}
	mustFail("the image signature made by another key", "signature "+signing.CosignTag(index), "holds no valid signature")
	// Removed: the registry deletes the signature manifest and its tag.
	req, _ := http.NewRequest("DELETE", "http://"+reg.Addr+"/v2/hello/manifests/"+forged.Digest(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete the signature: %v %v", err, resp)
	}
	mustFail("the image signature removed", "signature "+signing.CosignTag(index), "has no tag")
	// upload puts it back; verify passes again.
	if _, log, err := runUpload(t, r, nix, UploadOptions{Environment: "staging", NoConfirm: true}); err != nil {
		t.Fatalf("repair upload: %v\n%s", err, log)
	}
	if f := failures(verify(t, r, "staging")); len(f) > 0 {
		t.Errorf("verify after the repair upload: %v", f)
	}
}
