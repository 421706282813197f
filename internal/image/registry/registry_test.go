package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/testenv"
)

// isolate points every credential location at empty temp dirs.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	// Unset, not empty: docker-registry would read REGISTRY_AUTH_FILE as
	// its own configuration.
	t.Setenv("REGISTRY_AUTH_FILE", "")
	os.Unsetenv("REGISTRY_AUTH_FILE")
	return home
}

// recorder counts requests by method under the authenticating transport.
type recorder struct {
	mu      sync.Mutex
	methods map[string]int
	bytes   int64
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if r.methods == nil {
		r.methods = map[string]int{}
	}
	r.methods[req.Method]++
	if req.ContentLength > 0 {
		r.bytes += req.ContentLength
	}
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) count(m string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.methods[m]
}

func randomBlob(t *testing.T, n int) ([]byte, string) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, oci.Digest(b)
}

// conformance runs the Target contract against t.
func conformance(t *testing.T, target Target) {
	ctx := context.Background()
	small, smallD := randomBlob(t, 1000)
	big, bigD := randomBlob(t, 3*1024*1024+17)
	streamed, streamedD := randomBlob(t, 2*1024*1024)

	if err := target.CheckPush(ctx); err != nil {
		t.Fatalf("CheckPush: %v", err)
	}
	for _, d := range []string{smallD, bigD} {
		if ok, err := target.HasBlob(ctx, d); err != nil || ok {
			t.Fatalf("HasBlob(%s) before upload = %v, %v", d, ok, err)
		}
	}
	if err := target.PutBlob(ctx, smallD, int64(len(small)), bytes.NewReader(small)); err != nil {
		t.Fatalf("PutBlob small: %v", err)
	}
	if err := target.PutBlob(ctx, bigD, int64(len(big)), bytes.NewReader(big)); err != nil {
		t.Fatalf("PutBlob big: %v", err)
	}
	n, err := target.StreamBlob(ctx, func(w io.Writer) (string, error) {
		for i := 0; i < len(streamed); i += 100000 {
			if _, err := w.Write(streamed[i:min(i+100000, len(streamed))]); err != nil {
				return "", err
			}
		}
		return streamedD, nil
	})
	if err != nil || n != int64(len(streamed)) {
		t.Fatalf("StreamBlob = %d, %v", n, err)
	}
	for _, d := range []string{smallD, bigD, streamedD} {
		if ok, err := target.HasBlob(ctx, d); err != nil || !ok {
			t.Fatalf("HasBlob(%s) after upload = %v, %v", d, ok, err)
		}
	}
	// A wrong digest is refused and leaves nothing.
	_, wrongD := randomBlob(t, 10)
	err = target.PutBlob(ctx, wrongD, int64(len(small)), bytes.NewReader(small))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("PutBlob with a wrong digest: %v", err)
	}
	if ok, _ := target.HasBlob(ctx, wrongD); ok {
		t.Fatal("a blob with a wrong digest was stored")
	}
	_, err = target.StreamBlob(ctx, func(w io.Writer) (string, error) {
		w.Write([]byte("abc"))
		return wrongD, nil
	})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("StreamBlob with a wrong digest: %v", err)
	}
	// A failing writer fails the upload.
	_, err = target.StreamBlob(ctx, func(w io.Writer) (string, error) {
		w.Write([]byte("partial"))
		return "", fmt.Errorf("store path vanished")
	})
	if err == nil || !strings.Contains(err.Error(), "vanished") {
		t.Fatalf("StreamBlob with a failing writer: %v", err)
	}

	// Manifests: by digest, then tagged.
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	if err := target.PutBlob(ctx, oci.Digest(config), int64(len(config)), bytes.NewReader(config)); err != nil {
		t.Fatal(err)
	}
	m := oci.Manifest{SchemaVersion: 2, MediaType: oci.MediaTypeManifest,
		Config: oci.Descriptor{MediaType: oci.MediaTypeConfig, Digest: oci.Digest(config), Size: int64(len(config))},
		Layers: []oci.Descriptor{{MediaType: oci.MediaTypeLayer + "+gzip", Digest: smallD, Size: int64(len(small))}}}
	mb, _ := json.Marshal(m)
	if err := target.PutManifest(ctx, oci.Digest(mb), oci.MediaTypeManifest, mb); err != nil {
		t.Fatalf("PutManifest by digest: %v", err)
	}
	idx := oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Manifests: []oci.Descriptor{{MediaType: oci.MediaTypeManifest, Digest: oci.Digest(mb), Size: int64(len(mb)), Platform: &oci.Platform{Architecture: "amd64", OS: "linux"}}}}
	ib, _ := json.Marshal(idx)
	for _, tag := range []string{"1.0", "latest"} {
		if err := target.PutManifest(ctx, tag, oci.MediaTypeIndex, ib); err != nil {
			t.Fatalf("PutManifest tag %s: %v", tag, err)
		}
	}
	if err := target.PutManifest(ctx, "bad/tag", oci.MediaTypeIndex, ib); err == nil {
		t.Fatal("a bad tag was accepted")
	}
	if s := target.Stats(); s.BlobsUploaded != 4 || s.Manifests != 3 {
		t.Errorf("stats = %+v, want 4 blobs and 3 manifests", s)
	}
	reads(t, target, big, ib, mb)
}

// reads checks the read methods of a target holding big, the index ib
// tagged 1.0 and latest, and the manifest mb.
func reads(t *testing.T, target Target, big, ib, mb []byte) {
	ctx := context.Background()
	_, absent := randomBlob(t, 10)
	if size, found, err := target.StatBlob(ctx, oci.Digest(big)); err != nil || !found || size != int64(len(big)) {
		t.Errorf("StatBlob = %d, %v, %v; want %d bytes", size, found, err, len(big))
	}
	if _, found, err := target.StatBlob(ctx, absent); found || err != nil {
		t.Errorf("StatBlob of an absent blob = %v, %v", found, err)
	}
	r, err := target.ReadBlob(ctx, oci.Digest(big))
	if err != nil {
		t.Fatalf("ReadBlob: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("ReadBlob read %d bytes, %v", len(got), err)
	}
	if _, err := target.ReadBlob(ctx, absent); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadBlob of an absent blob: %v", err)
	}
	for ref, want := range map[string][]byte{"latest": ib, "1.0": ib, oci.Digest(mb): mb} {
		d, found, err := target.Resolve(ctx, ref)
		if err != nil || !found || d.Digest != oci.Digest(want) || d.Size != int64(len(want)) {
			t.Errorf("Resolve(%s) = %+v, %v, %v; want %s", ref, d, found, err, oci.Digest(want))
		}
		d, body, err := target.Manifest(ctx, ref)
		if err != nil || !bytes.Equal(body, want) || d.Digest != oci.Digest(want) {
			t.Errorf("Manifest(%s) = %+v, %d bytes, %v", ref, d, len(body), err)
		}
	}
	if d, _, _ := target.Resolve(ctx, "latest"); d.MediaType != oci.MediaTypeIndex {
		t.Errorf("Resolve(latest) media type %q", d.MediaType)
	}
	for _, ref := range []string{"nope", absent} {
		if _, found, err := target.Resolve(ctx, ref); found || err != nil {
			t.Errorf("Resolve(%s) = %v, %v; want not found", ref, found, err)
		}
		if _, _, err := target.Manifest(ctx, ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Manifest(%s): %v, want ErrNotFound", ref, err)
		}
	}
}

// Opened read-only, a layout that does not exist reads as empty and is
// not created; writes are refused. A registry repository that does not
// exist reads as empty too.
func TestReadOnly(t *testing.T) {
	isolate(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "none")
	reg := testenv.StartRegistry(t)
	for _, ref := range []string{OCIPrefix + dir, reg.Addr + "/none"} {
		target, err := Open(ctx, ref, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		_, d := randomBlob(t, 10)
		if ok, err := target.HasBlob(ctx, d); ok || err != nil {
			t.Errorf("%s: HasBlob = %v, %v", ref, ok, err)
		}
		if _, found, err := target.Resolve(ctx, "latest"); found || err != nil {
			t.Errorf("%s: Resolve = %v, %v", ref, found, err)
		}
	}
	target, _ := Open(ctx, OCIPrefix+dir, Options{ReadOnly: true})
	if err := target.PutManifest(ctx, "latest", oci.MediaTypeIndex, []byte("{}")); err == nil {
		t.Error("a read-only layout took a manifest")
	}
	if err := target.PutBlob(ctx, oci.Digest([]byte("x")), 1, strings.NewReader("x")); err == nil {
		t.Error("a read-only layout took a blob")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("reading %s made it: %v", dir, err)
	}
}

func TestDirConformance(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	target, err := Open(context.Background(), "oci:"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, target)
	// skopeo reads the layout by tag.
	skopeo := testenv.LookPath(t, "skopeo", "apt-get install -y skopeo")
	out, err := exec.Command(skopeo, "inspect", "--raw", "oci:"+dir+":latest").CombinedOutput()
	if err != nil || !strings.Contains(string(out), oci.MediaTypeIndex) {
		t.Fatalf("skopeo inspect oci:%s:latest: %v\n%s", dir, err, out)
	}
	if _, err := OpenDir(""); err == nil {
		t.Error("oci: without a directory accepted")
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "oci-layout"), []byte("nope"), 0o644)
	if _, err := OpenDir(bad); err == nil || !strings.Contains(err.Error(), "oci-layout") {
		t.Errorf("a directory with a bad oci-layout: %v", err)
	}
}

func TestRemoteConformance(t *testing.T) {
	isolate(t)
	reg := testenv.StartRegistry(t)
	rec := &recorder{}
	target, err := Open(context.Background(), reg.Addr+"/releng/test", Options{Transport: rec, ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, target)
	// The 3 MiB blob went as three 1 MiB PATCHes and a PUT with the rest;
	// the 2 MiB streamed one as two PATCHes and an empty PUT.
	if got := rec.count(http.MethodPatch); got < 5 {
		t.Errorf("%d PATCH requests, want chunked uploads (≥ 5)", got)
	}
	out, err := exec.Command(testenv.LookPath(t, "skopeo", "apt-get install -y skopeo"), "inspect", "--tls-verify=false", "--raw", "docker://"+reg.Addr+"/releng/test:latest").CombinedOutput()
	if err != nil || !strings.Contains(string(out), oci.MediaTypeIndex) {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
}

func TestRemoteMount(t *testing.T) {
	isolate(t)
	reg := testenv.StartRegistry(t)
	ctx := context.Background()
	a, err := OpenRemote(ctx, reg.Addr+"/one", Options{})
	if err != nil {
		t.Fatal(err)
	}
	blob, d := randomBlob(t, 5000)
	if err := a.PutBlob(ctx, d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	b, err := OpenRemote(ctx, reg.Addr+"/two", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := b.Mount(ctx, d, []string{"elsewhere.example/one", reg.Addr + "/missing", reg.Addr + "/one"})
	if err != nil || !ok {
		t.Fatalf("Mount = %v, %v", ok, err)
	}
	if has, _ := b.HasBlob(ctx, d); !has {
		t.Fatal("mounted blob not there")
	}
	if s := b.Stats(); s.BlobsMounted != 1 || s.BlobBytes != 0 {
		t.Errorf("stats after mount = %+v", s)
	}
	_, other := randomBlob(t, 10)
	if ok, err := b.Mount(ctx, other, []string{reg.Addr + "/one"}); ok || err != nil {
		t.Errorf("mounting a missing blob = %v, %v", ok, err)
	}
}

func TestOpenRemoteErrors(t *testing.T) {
	isolate(t)
	for ref, want := range map[string]string{
		"https://example.com/x":   "without a scheme",
		"example.com/x:1.0":       "--tag",
		"example.com/x@sha256:00": "--tag",
		"example.com/UPPER":       "not a repository",
	} {
		if _, err := Open(context.Background(), ref, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want it to mention %q", ref, err, want)
		}
	}
}

// authRegistry starts docker-registry with htpasswd authentication for
// user/pass.
func authRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	bin := testenv.LookPath(t, "docker-registry", "apt-get install -y docker-registry")
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nauth:\n  htpasswd:\n    realm: releng-test\n    path: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), filepath.Join(dir, "htpasswd"), addr)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry with auth did not start: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAuth(t *testing.T) {
	addr := authRegistry(t, "releng", "s3cret-pass")
	ctx := context.Background()
	auth := base64.StdEncoding.EncodeToString([]byte("releng:s3cret-pass"))
	wrong := base64.StdEncoding.EncodeToString([]byte("releng:wrong"))

	tests := []struct {
		name  string
		setup func(t *testing.T, home string)
		want  string // "" = push works
	}{
		{"no credentials", func(t *testing.T, home string) {}, "none were found"},
		{"docker config.json", func(t *testing.T, home string) {
			writeJSON(t, filepath.Join(home, ".docker", "config.json"), map[string]any{"auths": map[string]any{addr: map[string]string{"auth": auth}}})
		}, ""},
		{"wrong password", func(t *testing.T, home string) {
			writeJSON(t, filepath.Join(home, ".docker", "config.json"), map[string]any{"auths": map[string]any{addr: map[string]string{"auth": wrong}}})
		}, "refused the credentials"},
		{"credential helper", func(t *testing.T, home string) {
			bin := filepath.Join(home, "bin")
			os.MkdirAll(bin, 0o755)
			helper := "#!/bin/sh\ncat >/dev/null\necho '{\"ServerURL\":\"" + addr + "\",\"Username\":\"releng\",\"Secret\":\"s3cret-pass\"}'\n"
			os.WriteFile(filepath.Join(bin, "docker-credential-relengtest"), []byte(helper), 0o755)
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			writeJSON(t, filepath.Join(home, ".docker", "config.json"), map[string]any{"credHelpers": map[string]string{addr: "relengtest"}})
		}, ""},
		{"containers auth.json under XDG_RUNTIME_DIR", func(t *testing.T, home string) {
			writeJSON(t, filepath.Join(home, "run", "containers", "auth.json"), map[string]any{"auths": map[string]any{addr: map[string]string{"auth": auth}}})
		}, ""},
		{"containers auth.json in ~/.config, docker config for another host", func(t *testing.T, home string) {
			writeJSON(t, filepath.Join(home, ".docker", "config.json"), map[string]any{"auths": map[string]any{"other.example": map[string]string{"auth": auth}}})
			writeJSON(t, filepath.Join(home, ".config", "containers", "auth.json"), map[string]any{"auths": map[string]any{addr: map[string]string{"auth": auth}}})
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := isolate(t)
			tc.setup(t, home)
			target, err := Open(ctx, addr+"/releng/auth", Options{})
			if err == nil {
				err = target.CheckPush(ctx)
			}
			if err == nil {
				blob, d := randomBlob(t, 100)
				err = target.PutBlob(ctx, d, 100, bytes.NewReader(blob))
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("push failed: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatal("the error shows the password")
			}
		})
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o700)
	data, _ := json.Marshal(v)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestValid(t *testing.T) {
	for _, tag := range []string{"2.93.0", "latest", "2.93", "v1_rc-1"} {
		if err := ValidTag(tag); err != nil {
			t.Errorf("ValidTag(%q): %v", tag, err)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "2.93.0+local", "a/b", strings.Repeat("x", 129)} {
		if err := ValidTag(tag); err == nil {
			t.Errorf("ValidTag(%q) accepted", tag)
		}
	}
	if ValidDigest("sha256:"+strings.Repeat("a", 64)) != nil || ValidDigest("sha256:ABC") == nil {
		t.Error("ValidDigest")
	}
}

func TestTransient(t *testing.T) {
	if Transient(nil) || Transient(context.Canceled) || !Transient(io.ErrUnexpectedEOF) {
		t.Error("Transient misclassifies")
	}
}
