package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/minio/minio-go/v7"
)

func TestMinIORoundTrip(t *testing.T) {
	m := StartMinIO(t)
	m.MakeBucket(t, "roundtrip", true)
	c := m.Client(t)
	ctx := context.Background()
	body := []byte("hello from releng\n")
	if _, err := c.PutObject(ctx, "roundtrip", "dir/hello.txt", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, "roundtrip", "dir/hello.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %q, %v; want %q", got, err, body)
	}
	// The public bucket is readable anonymously over plain HTTP, as Nix reads a cache.
	resp, err := httpGet(m.URL() + "/roundtrip/dir/hello.txt")
	if err != nil || resp != string(body) {
		t.Fatalf("anonymous GET: %q, %v", resp, err)
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	skopeo := LookPath(t, "skopeo", "apt-get install -y skopeo")
	r := StartRegistry(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Addr+"/test/tiny:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	want, _ := img.Digest()
	// Pull it back with go-containerregistry and with skopeo, an independent reader.
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled digest %s, pushed %s", d, want)
	}
	out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "docker://"+ref.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var info struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("skopeo output: %v\n%s", err, out)
	}
	if info.Digest != want.String() || len(info.Layers) != 2 {
		t.Fatalf("skopeo sees digest %s with %d layers; want %s with 2", info.Digest, len(info.Layers), want)
	}
}

func TestNixBuildRoundTrip(t *testing.T) {
	n := SetupNix(t)
	dir := t.TempDir()
	// A unique derivation so the test really builds.
	expr := fmt.Sprintf(`derivation { name = "releng-testenv-%d"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo built > $out" ]; }`, os.Getpid())
	file := filepath.Join(dir, "default.nix")
	if err := os.WriteFile(file, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := n.Command("nix-build", file, "--no-out-link").Output()
	if err != nil {
		t.Fatalf("nix-build: %v", err)
	}
	path := strings.TrimSpace(string(out))
	content, err := os.ReadFile(path)
	if err != nil || string(content) != "built\n" {
		t.Fatalf("output %s: %q, %v", path, content, err)
	}
	js, err := n.Command("nix", "path-info", "--json", path).Output()
	if err != nil {
		t.Fatalf("nix path-info: %v", err)
	}
	// Nix 2.8 prints an array, newer Nix an object keyed by path: accept both.
	var arr []map[string]any
	var obj map[string]map[string]any
	var info map[string]any
	if json.Unmarshal(js, &arr) == nil && len(arr) == 1 {
		info = arr[0]
	} else if json.Unmarshal(js, &obj) == nil {
		info = obj[path]
	}
	if info == nil {
		t.Fatalf("unexpected path-info JSON: %s", js)
	}
	if size, _ := info["narSize"].(float64); size <= 0 {
		t.Fatalf("narSize missing in %s", js)
	}
}

func TestGitRepo(t *testing.T) {
	r := NewGitRepo(t)
	r.Write("a.txt", "a\n")
	head := r.CommitAll("first")
	r.Git("push", "-q", "origin", "main")
	remoteHead := strings.TrimSpace(string(must(exec.Command("git", "--git-dir", r.Remote, "rev-parse", "main").Output())))
	if remoteHead != head {
		t.Fatalf("remote main %s, local %s", remoteHead, head)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
