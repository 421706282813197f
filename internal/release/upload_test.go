package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/testenv"
)

func runUpload(t *testing.T, r *testenv.GitRepo, nix *testenv.Nix, opts UploadOptions) (*UploadReport, string, error) {
	t.Helper()
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if opts.Run == nil {
		opts.Run = &runctx.Run{}
	}
	opts.Run.Events = logEvents(&log)
	opts.NixEnv = nix.Env
	rep, err := Upload(context.Background(), p, opts)
	return rep, log.String(), err
}

// logEvents writes progress events as lines.
func logEvents(w io.Writer) func(runctx.Event) {
	var mu sync.Mutex
	return func(e runctx.Event) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s %s: %s %s\n", e.Kind, e.Stage, e.Object, e.Message)
	}
}

// typing is a run whose user types phrase when asked to confirm.
func typing(phrase string) *runctx.Run {
	return &runctx.Run{Confirm: func(env, want string) error {
		if phrase != want {
			return ErrNotConfirmed
		}
		return nil
	}}
}

func verify(t *testing.T, r *testenv.GitRepo, env string) *VerifyReport {
	t.Helper()
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), p, VerifyOptions{Environment: env})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func failures(rep *VerifyReport) []string {
	var f []string
	for _, c := range rep.Checks {
		if !c.OK {
			f = append(f, c.Object+": "+c.Detail)
		}
	}
	return f
}

func step(rep *UploadReport, name string) Published {
	for _, s := range rep.Steps {
		if s.Step == name {
			return s
		}
	}
	return Published{}
}

func TestDemo(t *testing.T) {
	nix := testenv.SetupNix(t)
	testenv.LookPath(t, "git", "apt-get install -y git")
	dir := filepath.Join(t.TempDir(), "demo")
	var log bytes.Buffer
	rep, err := Demo(context.Background(), DemoOptions{Dir: dir, Run: &runctx.Run{Events: logEvents(&log)}, NixEnv: nix.Env})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, log.String())
	}
	if rep.Verify.Failed != 0 || len(rep.Verify.Checks) < 10 {
		t.Fatalf("verify after demo: %d checks, failures %v", len(rep.Verify.Checks), failures(rep.Verify))
	}
	local := filepath.Join(dir, "release", "local")
	// Stock Nix reads the local cache and accepts its signatures.
	pubKey, err := loadKeyForTest(filepath.Join(local, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(pubKey, ":")
	var manifest map[string]string
	out, err := nix.Command("nix-instantiate", "--eval", "--strict", "--json", filepath.Join(local, "releases", "manifest.nix")).Output()
	if err != nil || json.Unmarshal(out, &manifest) != nil {
		t.Fatalf("published manifest.nix: %v %s", err, out)
	}
	for sys, path := range manifest {
		cmd := nix.Command("nix", "--extra-experimental-features", "nix-command", "store", "verify", "--store", "file://"+filepath.Join(local, "cache"),
			"--trusted-public-keys", pubKey, "--sigs-needed", "1", "-r", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nix store verify of %s (%s) in the local cache signed by %s: %v\n%s", path, sys, name, err, out)
		}
	}
	// The tag is on the local git remote.
	if out, err := exec.Command("git", "--git-dir", filepath.Join(local, "git"), "rev-parse", "1.0.0^{commit}").CombinedOutput(); err != nil {
		t.Errorf("tag on the local remote: %v %s", err, out)
	}
	// The docs went to the major and stable prefixes.
	for _, p := range []string{"manual/hello/1.0/usage.html", "manual/hello/stable/usage.html"} {
		if _, err := os.Stat(filepath.Join(local, "docs", p)); err != nil {
			t.Errorf("docs: %v", err)
		}
	}
	// Every command the demo prints to look at what it published works as
	// pasted into a shell (the cache one substitutes into a new store).
	testenv.LookPath(t, "skopeo", "apt-get install -y skopeo")
	if len(rep.Look) < 5 {
		t.Errorf("demo prints %d commands to look at what it published", len(rep.Look))
	}
	for _, l := range rep.Look {
		cmd := exec.Command("bash", "-c", l.Command)
		cmd.Env = append(os.Environ(), nix.Env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %s: %v\n%s", l.What, l.Command, err, out)
		}
	}
}

// TestUploadResumesAfterFailure breaks the docs step, then fixes it: the
// second run does not publish again what the first one did.
func TestUploadResumesAfterFailure(t *testing.T) {
	r, nix := exampleRepo(t, nil)
	if _, log, err := build(t, r, nix, BuildOptions{}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	// A file stands where the docs go: the docs step fails after the
	// access check passed and the earlier steps published.
	docs := filepath.Join(r.Dir, "release", "local", "docs", "manual")
	os.MkdirAll(filepath.Dir(docs), 0o755)
	os.WriteFile(docs, []byte("in the way"), 0o644)
	_, log, err := runUpload(t, r, nix, UploadOptions{Environment: "local"})
	if err == nil || !strings.Contains(err.Error(), "stopped at step docs") || !strings.Contains(err.Error(), "run `releng upload` again") {
		t.Fatalf("broken docs bucket: %v\n%s", err, log)
	}
	if !strings.Contains(err.Error(), "cache") || !strings.Contains(err.Error(), "releases") {
		t.Errorf("the error does not say what was published: %v", err)
	}
	os.Remove(docs)
	rep, log, err := runUpload(t, r, nix, UploadOptions{Environment: "local"})
	if err != nil {
		t.Fatalf("second upload: %v\n%s", err, log)
	}
	if s := step(rep, "releases"); s.Sent != 0 || s.Objects == 0 {
		t.Errorf("releases step sent again: %+v", s)
	}
	// Not an official release: the manual goes to manual/hello/nightly/ only.
	if s := step(rep, "docs"); s.Sent != 2 {
		t.Errorf("docs step: %+v", s)
	}
	if f := failures(verify(t, r, "local")); len(f) > 0 {
		t.Errorf("verify after resume: %v", f)
	}
	// A run with the journal gone finds everything already there.
	os.Remove(filepath.Join(r.Dir, "release", "state", "local.journal"))
	rep, _, err = runUpload(t, r, nix, UploadOptions{Environment: "local"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cache", "releases", "docs"} {
		if s := step(rep, name); s.Sent != 0 || s.Objects == 0 {
			t.Errorf("third upload, step %s: %+v (want nothing sent)", name, s)
		}
	}
}

func TestUploadLockAndConfirm(t *testing.T) {
	r, nix := exampleRepo(t, map[string]string{"releng.toml": strings.Replace(exampleToml(""), "[build]", "[environments.local]\nconfirm = true\nreleases = \"out/releases\"\n\n[build]", 1)})
	if _, log, err := build(t, r, nix, BuildOptions{}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	_, _, err := runUpload(t, r, nix, UploadOptions{Environment: "local", Run: typing("yes")})
	if err == nil || !strings.Contains(err.Error(), "nothing was published") {
		t.Errorf("wrong phrase: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "out")); !os.IsNotExist(err) {
		t.Errorf("something was published without confirmation")
	}
	lock, err := journal.Acquire(filepath.Join(r.Dir, "release", "state", "local.lock"), "upload")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runUpload(t, r, nix, UploadOptions{Environment: "local", Run: typing("I want to release this to local")})
	var held *journal.HeldError
	if !errors.As(err, &held) {
		t.Errorf("upload while locked: %v", err)
	}
	lock.Release()
	rep, log, err := runUpload(t, r, nix, UploadOptions{Environment: "local", Run: typing("I want to release this to local")})
	if err != nil || step(rep, "releases").Sent == 0 {
		t.Errorf("confirmed upload: %v %+v\n%s", err, rep, log)
	}
	// --dry-run sends nothing.
	os.RemoveAll(filepath.Join(r.Dir, "out"))
	if _, _, err := runUpload(t, r, nix, UploadOptions{Environment: "local", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "out")); !os.IsNotExist(err) {
		t.Errorf("--dry-run published")
	}
}

// TestUploadToMinIO publishes to an S3 environment (MinIO) with credentials
// from a credentials_command, verifies it, and has verify catch a tampered
// object.
func TestUploadToMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	reg := testenv.StartRegistry(t)
	for _, b := range []string{"releases", "docs", "cache"} {
		m.MakeBucket(t, b, b == "cache")
	}
	creds := filepath.Join(t.TempDir(), "creds.sh")
	os.WriteFile(creds, []byte(fmt.Sprintf("#!/bin/sh\necho '{\"name\": \"releng-$1\", \"id\": \"%s\", \"secret_key\": \"%s\"}'\n", m.AccessKey, m.SecretKey)), 0o755)
	keyDir := t.TempDir()
	env := fmt.Sprintf(`[environments.staging]
colour = "green"
releases = "s3://releases"
docs = "s3://docs"
cache = "s3://cache?endpoint=%[1]s&scheme=http&region=us-east-1&compression=zstd&write-nar-listing=true&narinfo-compression=zstd&ls-compression=zstd"
s3_endpoint = "http://%[1]s"
s3_region = "us-east-1"
signing_key = "%[2]s/staging.key"
credentials_command = ["%[3]s", "{env}"]

[[environments.staging.images]]
repository = "%[4]s/hello"

[build]`, m.Endpoint, keyDir, creds, reg.Addr)
	r, nix := exampleRepo(t, map[string]string{"releng.toml": strings.Replace(exampleToml(""), "[build]", env, 1)})
	genKey(t, filepath.Join(keyDir, "staging.key"))
	if _, log, err := build(t, r, nix, BuildOptions{}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	rep, log, err := runUpload(t, r, nix, UploadOptions{Environment: "staging", NoConfirm: true})
	if err != nil {
		t.Fatalf("upload: %v\n%s", err, log)
	}
	if strings.Contains(log, m.SecretKey) {
		t.Errorf("the secret key is in the log")
	}
	if step(rep, "cache").Sent < 5 || step(rep, "releases").Sent != 12 || step(rep, "images").Sent != step(rep, "images").Objects || step(rep, "images").Sent == 0 {
		t.Errorf("upload report: %+v", rep.Steps)
	}
	if f := failures(verify(t, r, "staging")); len(f) > 0 {
		t.Fatalf("verify: %v", f)
	}
	// skopeo, an independent reader, sees the multi-arch index under the version tag.
	out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Addr+"/hello:1.0.0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"arm64"`) || !strings.Contains(string(out), `"amd64"`) {
		t.Errorf("skopeo inspect of the pushed index: %v\n%s", err, out)
	}
	// Tamper with a published tarball: verify says which.
	c := m.Client(t)
	bad := []byte("not the tarball")
	if _, err := c.PutObject(context.Background(), "releases", "hello/hello-1.0.0/hello-1.0.0.tar.gz", bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	f := failures(verify(t, r, "staging"))
	if len(f) != 1 || !strings.Contains(f[0], "hello-1.0.0.tar.gz") {
		t.Errorf("verify after tampering: %v", f)
	}
}

func TestDocsPrefixes(t *testing.T) {
	for _, tt := range []struct {
		official, stable bool
		want             []string
	}{
		{false, false, []string{"manual/hello/nightly/"}},
		{true, false, []string{"manual/hello/1.0/"}},
		{true, true, []string{"manual/hello/1.0/", "manual/hello/stable/"}},
	} {
		if got := DocsPrefixes("hello", "1.0", tt.official, tt.stable); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("DocsPrefixes(official %v, stable %v) = %v, want %v", tt.official, tt.stable, got, tt.want)
		}
	}
}

// TestUploadOfficialPrerelease: an official release candidate publishes its
// manual under MAJOR, but moves neither the stable docs, the root
// manifest.nix nor the latest image tag.
func TestUploadOfficialPrerelease(t *testing.T) {
	r, nix := exampleRepo(t, map[string]string{"version.json": "{\n    \"version\": \"1.0.0-rc1\",\n    \"official_release\": true,\n    \"release_name\": \"First Light\"\n}\n"})
	if _, log, err := build(t, r, nix, BuildOptions{NoCheckGit: true}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	_, _, err := runUpload(t, r, nix, UploadOptions{Environment: "local", NoCheckGit: true})
	if err == nil || !strings.Contains(err.Error(), "tag 1.0.0-rc1 does not exist in this repository") {
		t.Fatalf("upload without the tag: %v", err)
	}
	r.Git("tag", "-a", "-m", "rc", "1.0.0-rc1")
	rep, log, err := runUpload(t, r, nix, UploadOptions{Environment: "local", NoCheckGit: true})
	if err != nil {
		t.Fatalf("upload: %v\n%s", err, log)
	}
	if s := step(rep, "manifest"); !strings.Contains(s.Skipped, "pre-release") {
		t.Errorf("manifest step: %+v", s)
	}
	local := filepath.Join(r.Dir, "release", "local")
	if _, err := os.Stat(filepath.Join(local, "docs", "manual", "hello", "1.0", "index.html")); err != nil {
		t.Errorf("manual under MAJOR: %v", err)
	}
	for _, p := range []string{"docs/manual/hello/stable", "docs/manual/hello/nightly", "releases/manifest.nix"} {
		if _, err := os.Stat(filepath.Join(local, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists for an official pre-release", p)
		}
	}
	index, _ := os.ReadFile(filepath.Join(local, "images", "index.json"))
	if !strings.Contains(string(index), `"1.0.0-rc1"`) || strings.Contains(string(index), `"latest"`) {
		t.Errorf("image tags of a pre-release: %s", index)
	}
}
