package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/releng-project/releng/internal/testenv"
)

// imageEnv sets up Nix, an empty layer cache and empty credentials for the
// image commands, and returns a small closure: an app referring to a
// library, both in the real store.
func imageEnv(t *testing.T) (app string) {
	t.Helper()
	nix := testenv.SetupNix(t)
	for _, kv := range nix.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	home := t.TempDir()
	t.Setenv("RELENG_CACHE_DIR", filepath.Join(home, "cache"))
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	os.Unsetenv("REGISTRY_AUTH_FILE") // docker-registry would read it as its own setting
	lib := filepath.Join(t.TempDir(), "cli-image-lib")
	os.MkdirAll(lib, 0o755)
	os.WriteFile(filepath.Join(lib, "data"), []byte(strings.Repeat("library data\n", 2000)), 0o644)
	out, err := nix.Command("nix-store", "--add", lib).Output()
	if err != nil {
		t.Fatalf("nix-store --add: %v", err)
	}
	libPath := strings.TrimSpace(string(out))
	expr := fmt.Sprintf(`derivation { name = "cli-image-app"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${builtins.storePath %q} > $out"]; }`, libPath)
	out, err = nix.Command("nix-build", "--no-out-link", "-E", expr).Output()
	if err != nil {
		t.Fatalf("nix-build: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func imageToml(app string, extra string) string {
	return fmt.Sprintf("name = \"demo\"\n\n[[images]]\nname = \"demo\"\nsystems = [\"x86_64-linux\"]\ncontents = [%q]\nnix_db = true\nconfig = { Cmd = [\"/bin/sh\"], Labels = { \"org.opencontainers.image.title\" = \"demo\" } }\n%s", app, extra)
}

func catalog(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Repositories []string }
	json.NewDecoder(resp.Body).Decode(&c)
	return c.Repositories
}

func TestImageCommands(t *testing.T) {
	app := imageEnv(t)
	reg := testenv.StartRegistry(t)
	r := newProject(t, imageToml(app, ""))
	repo := reg.Addr + "/releng/demo"

	out, errOut, code := run(t, "-C", r.Dir, "image", "layers")
	if code != 0 || !strings.Contains(out, "image demo for x86_64-linux") || !strings.Contains(out, "image contents") || !strings.Contains(out, "Nix database") {
		t.Fatalf("image layers: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = run(t, "-C", r.Dir, "--json", "image", "layers")
	var reports []struct {
		Layers []struct{ Kind string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &reports) != nil || len(reports) != 1 || len(reports[0].Layers) != 3 {
		t.Fatalf("image layers --json: exit %d\n%s", code, out)
	}
	out, errOut, code = run(t, "-C", r.Dir, "image", "layers", "--against", repo)
	if code != 0 || !strings.Contains(out, "a push would send 3 of 3 layers") || !strings.Contains(out, "missing") {
		t.Fatalf("image layers --against (empty registry): exit %d\n%s%s", code, out, errOut)
	}

	out, errOut, code = run(t, "-C", r.Dir, "image", "build")
	if code != 0 {
		t.Fatalf("image build: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range []string{"release/images/demo-x86_64-linux/index.json", "release/images/demo-x86_64-linux.tar.gz"} {
		if _, err := os.Stat(filepath.Join(r.Dir, f)); err != nil {
			t.Errorf("image build did not write %s: %v", f, err)
		}
	}
	out, errOut, code = run(t, "-C", r.Dir, "image", "push", "--to", repo)
	if code != 0 || !strings.Contains(out, repo+":2.93.0 sha256:") || !strings.Contains(out, "3 sent") {
		t.Fatalf("image push: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = run(t, "-C", r.Dir, "image", "layers", "--against", repo)
	if code != 0 || !strings.Contains(out, "a push would send 0 of 3 layers, 0 B") {
		t.Errorf("image layers --against after the push: exit %d\n%s", code, out)
	}
	out, _, code = run(t, "-C", r.Dir, "image", "push", "--to", repo, "--tag", "2.93", "--tag", "latest")
	if code != 0 || !strings.Contains(out, "0 sent") || !strings.Contains(out, repo+":latest") {
		t.Errorf("second push: exit %d\n%s", code, out)
	}
	// From the store, to an OCI layout.
	layout := filepath.Join(t.TempDir(), "oci")
	out, errOut, code = run(t, "-C", r.Dir, "--json", "image", "push", "--from-store", "--to", "oci:"+layout)
	var res struct {
		Index struct{ Digest string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Index.Digest == "" {
		t.Fatalf("push --from-store to oci: exit %d\n%s%s", code, out, errOut)
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		if out, err := exec.Command(skopeo, "inspect", "--raw", "oci:"+layout+":2.93.0").CombinedOutput(); err != nil {
			t.Errorf("skopeo inspect oci:%s:2.93.0: %v\n%s", layout, err, out)
		}
	}
}

// authRegistry starts docker-registry with htpasswd authentication.
func authRegistry(t *testing.T) string {
	t.Helper()
	bin := testenv.LookPath(t, "docker-registry", "apt-get install -y docker-registry")
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("releng:"+string(hash)+"\n"), 0o600)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nauth:\n  htpasswd:\n    realm: test\n    path: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), filepath.Join(dir, "htpasswd"), addr)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
	}
	t.Fatal("registry with authentication did not start")
	return ""
}

// hostileArchive writes a gzipped tar with the given entries.
func hostileArchive(t *testing.T, entries map[string]string, symlinks map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range entries {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644})
		io.WriteString(tw, body)
	}
	for name, target := range symlinks {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target})
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "demo-2.93.0-docker-image-x86_64-linux.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// Bad input, as a new user would try it: clear errors, and nothing pushed.
func TestImagePushBadInput(t *testing.T) {
	app := imageEnv(t)
	reg := testenv.StartRegistry(t)
	authed := authRegistry(t)
	manifest := `[{"Config":"c.json","RepoTags":["demo:1"],"Layers":["l/layer.tar"]}]`
	tests := []struct {
		name string
		toml string
		args []string
		code int
		want []string
	}{
		{"max_layers 0", imageToml(app, "max_layers = 0\n"), []string{"image", "push", "--to", reg.Addr + "/x"}, 2, []string{"releng.toml", "between 2 and 125"}},
		{"max_layers 200", imageToml(app, "max_layers = 200\n"), []string{"image", "push", "--to", reg.Addr + "/x"}, 2, []string{"between 2 and 125"}},
		{"no destination", imageToml(app, ""), []string{"image", "push"}, 2, []string{"--to REF is required"}},
		{"unknown image", imageToml(app, ""), []string{"image", "push", "nope", "--to", reg.Addr + "/x"}, 2, []string{`no image "nope"`, "demo"}},
		{"tag in the destination", imageToml(app, ""), []string{"image", "push", "--to", reg.Addr + "/x:1.0"}, 1, []string{"--tag"}},
		{"bad tag", imageToml(app, ""), []string{"image", "push", "--to", reg.Addr + "/x", "--tag", "2.93.0+local"}, 1, []string{"2.93.0+local"}},
		{"archive with ../ entries", "name = \"demo\"\n", []string{"image", "push", "--to", reg.Addr + "/x", "--archive",
			hostileArchive(t, map[string]string{"../../etc/cron.d/x": "boom", "manifest.json": manifest}, nil)}, 1, []string{"..", "nothing was pushed"}},
		{"archive with an absolute symlink", "name = \"demo\"\n", []string{"image", "push", "--to", reg.Addr + "/x", "--archive",
			hostileArchive(t, map[string]string{"manifest.json": manifest}, map[string]string{"l/layer.tar": "/etc/shadow"})}, 1, []string{"absolute symbolic link", "nothing was pushed"}},
		{"archive naming missing layers", "name = \"demo\"\n", []string{"image", "push", "--to", reg.Addr + "/x", "--archive",
			hostileArchive(t, map[string]string{"manifest.json": manifest, "c.json": `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:00"]}}`}, nil)}, 1, []string{"l/layer.tar", "not in the archive"}},
		{"no images, no archives", "name = \"demo\"\n", []string{"image", "push", "--to", reg.Addr + "/x"}, 1, []string{"no [[images]]", "--archive"}},
		{"registry needs credentials", imageToml(app, ""), []string{"image", "push", "--from-store", "--to", authed + "/x"}, 1, []string{"wants credentials", "docker login " + authed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newProject(t, tc.toml)
			out, errOut, code := run(t, append([]string{"-C", r.Dir}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
	if repos := catalog(t, reg.Addr); len(repos) != 0 {
		t.Errorf("the registry received %v", repos)
	}
	req, _ := http.NewRequest("GET", "http://"+authed+"/v2/_catalog", nil)
	req.SetBasicAuth("releng", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"repositories":[]`) {
		t.Errorf("the registry needing credentials received: %s", body)
	}
}
