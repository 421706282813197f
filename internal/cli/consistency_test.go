package cli

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/testenv"
)

// TestPushesAgree: `releng cache push`, `releng image push` and `releng
// upload` of the same release write the same cache objects and the same
// image digests: the three share the one binary-cache writer and the one
// image pusher, with the same layer-cache key and settings.
func TestPushesAgree(t *testing.T) {
	nix := testenv.SetupNix(t)
	for _, kv := range nix.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("RELENG_CACHE_DIR", t.TempDir())
	sp := newSandboxProject(t, func(s string) string { return s })
	dir := sp.repo.Dir
	for _, args := range [][]string{{"build"}, {"upload", "--environment", "local", "--noconfirm"}} {
		if out, errOut, code := run(t, append([]string{"-C", dir}, args...)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	rec, err := artifacts.Load(filepath.Join(dir, "release"))
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "release", "local")

	// The same closures with cache push, signed with the same key.
	other := t.TempDir()
	var paths []string
	for _, j := range rec.Jobs {
		if strings.HasPrefix(j.Attr, "tarballs") {
			continue // cache_exclude_jobs
		}
		for _, o := range j.Outputs {
			paths = append(paths, o)
		}
	}
	args := append([]string{"cache", "push", "--to", "file://" + other + "?compression=zstd&secret-key=" + filepath.Join(local, "signing.key")}, paths...)
	if out, errOut, code := run(t, args...); code != 0 {
		t.Fatalf("cache push: exit %d\n%s%s", code, out, errOut)
	}
	n := 0
	filepath.WalkDir(other, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(other, p)
		mine, _ := os.ReadFile(p)
		theirs, err := os.ReadFile(filepath.Join(local, "cache", rel))
		if err != nil || !bytes.Equal(mine, theirs) {
			t.Errorf("cache push wrote %s, which upload's cache lacks or holds different bytes of (%v)", rel, err)
		}
		n++
		return nil
	})
	if n < 5 {
		t.Errorf("cache push wrote only %d files", n)
	}

	// The same images with image push: from the build, and streamed from
	// the store.
	want := indexDigests(t, filepath.Join(local, "images"))
	for _, extra := range [][]string{nil, {"--from-store"}} {
		dest := t.TempDir()
		args := append([]string{"-C", dir, "image", "push", "--to", "oci:" + dest, "--tag", rec.Version}, extra...)
		if out, errOut, code := run(t, args...); code != 0 {
			t.Fatalf("image push %v: exit %d\n%s%s", extra, code, out, errOut)
		}
		got := indexDigests(t, dest)
		if got[rec.Version] == "" || got[rec.Version] != want[rec.Version] {
			a, _ := os.ReadFile(filepath.Join(dest, "blobs", "sha256", strings.TrimPrefix(got[rec.Version], "sha256:")))
			b, _ := os.ReadFile(filepath.Join(local, "images", "blobs", "sha256", strings.TrimPrefix(want[rec.Version], "sha256:")))
			t.Errorf("image push %v: index of %s is %s, upload's is %s:\n%s\n%s", extra, rec.Version, got[rec.Version], want[rec.Version], a, b)
		}
	}
}

// indexDigests maps the tags of an OCI layout to the digests they name.
func indexDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range idx.Manifests {
		out[m.Annotations["org.opencontainers.image.ref.name"]] = m.Digest
	}
	return out
}
