package image

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/nixbuild"
	"github.com/releng-project/releng/internal/testenv"
)

// store makes test closures in the real /nix/store with Nix.
type store struct {
	t   *testing.T
	nix *testenv.Nix
}

func newStore(t *testing.T) *store {
	return &store{t: t, nix: testenv.SetupNix(t)}
}

func (s *store) run(name string, args ...string) string {
	s.t.Helper()
	cmd := s.nix.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// data adds a directory of compressible pseudo-random text (about size
// bytes, in a few files) and returns its store path.
func (s *store) data(name string, size int, seed int64) string {
	s.t.Helper()
	dir := filepath.Join(s.t.TempDir(), name)
	rng := rand.New(rand.NewSource(seed))
	words := []string{"nix ", "store ", "layer ", "image ", "release ", "lix ", "\n", "reproducible "}
	for f := 0; f < 3; f++ {
		var b strings.Builder
		for b.Len() < size/3 {
			b.WriteString(words[rng.Intn(len(words))])
			if rng.Intn(7) == 0 {
				fmt.Fprintf(&b, "%x", rng.Int63())
			}
		}
		p := filepath.Join(dir, "share", fmt.Sprintf("file%d.txt", f))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	return s.run("nix-store", "--add", dir)
}

// drv builds a derivation whose builder is /bin/sh running script, with
// the store paths refs available (and referenced) as $ref0, $ref1…
func (s *store) drv(name, script string, refs ...string) string {
	s.t.Helper()
	var env strings.Builder
	for i, r := range refs {
		fmt.Fprintf(&env, "ref%d = builtins.storePath %q; ", i, r)
	}
	expr := fmt.Sprintf(`derivation { name = %q; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" %q]; %s}`, name, script, env.String())
	return s.run("nix-build", "--no-out-link", "-E", expr)
}

// app builds an "application" referring to every path of libs.
func (s *store) app(name string, libs ...string) string {
	var script strings.Builder
	script.WriteString("/bin/mkdir -p $out/bin; echo '#!/bin/sh' > $out/bin/" + name + "; ")
	for i := range libs {
		fmt.Fprintf(&script, "echo \"# uses $ref%d\" >> $out/bin/%s; ", i, name)
	}
	script.WriteString("/bin/chmod +x $out/bin/" + name)
	return s.drv(name, script.String(), libs...)
}

// root builds a root tree: bin/NAME → the app, etc/passwd.
func (s *store) root(app, name string) string {
	return s.drv("root-"+name, "/bin/mkdir -p $out/bin $out/etc && /bin/ln -s $ref0/bin/"+name+" $out/bin/"+name+" && echo 'root:x:0:0::/:/bin/sh' > $out/etc/passwd", app)
}

// input makes an Input for contents and root with their closure.
func (s *store) input(name, system string, contents []string, root string, mod func(*config.Image)) *Input {
	s.t.Helper()
	im := &config.Image{Name: name, MaxLayers: 100, MaxLayerSize: "65MB", Compression: "gzip", TmpDirs: []string{"/tmp", "/var/tmp"}}
	if mod != nil {
		mod(im)
	}
	in, err := FromConfig(im, system, "1.0")
	if err != nil {
		s.t.Fatal(err)
	}
	in.Contents, in.Root = contents, root
	all := append([]string(nil), contents...)
	if root != "" {
		all = append(all, root)
	}
	n := &nixbuild.Nix{Env: s.nix.Env}
	in.Closure, err = n.ClosureInfo(context.Background(), all...)
	if err != nil {
		s.t.Fatal(err)
	}
	return in
}

// proxy is a reverse proxy in front of a registry that records what goes
// through it and can refuse requests.
type proxy struct {
	Addr string
	mu   sync.Mutex
	// blobBytes counts request body bytes of blob uploads (PATCH, PUT).
	blobBytes int64
	// uploaded lists the digests committed with PUT …?digest=.
	uploaded []string
	// fail404 makes the next n tag puts (PUT /manifests/<tag>) answer 404.
	fail404 int
	tagPuts int
}

func startProxy(t *testing.T, registryAddr string) *proxy {
	t.Helper()
	p := &proxy{}
	target, _ := url.Parse("http://" + registryAddr)
	rp := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isBlob := strings.Contains(r.URL.Path, "/blobs/uploads/")
		isTag := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "sha256:")
		p.mu.Lock()
		if isTag {
			p.tagPuts++
			if p.fail404 > 0 {
				p.fail404--
				p.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}`)
				return
			}
		}
		if isBlob && r.Method == http.MethodPut {
			p.uploaded = append(p.uploaded, r.URL.Query().Get("digest"))
		}
		p.mu.Unlock()
		if isBlob && (r.Method == http.MethodPatch || r.Method == http.MethodPut) && r.Body != nil {
			r.Body = &countingBody{r: r.Body, p: p}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

type countingBody struct {
	r interface {
		Read([]byte) (int, error)
		Close() error
	}
	p *proxy
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.mu.Lock()
	c.p.blobBytes += int64(n)
	c.p.mu.Unlock()
	return n, err
}

func (c *countingBody) Close() error { return c.r.Close() }

func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blobBytes, p.uploaded, p.tagPuts = 0, nil, 0
}

func (p *proxy) snapshot() (int64, []string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blobBytes, append([]string(nil), p.uploaded...), p.tagPuts
}

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, name, "apt-get install -y "+name)
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// isolateCredentials points credential lookups at an empty home.
func isolateCredentials(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	os.MkdirAll(filepath.Join(home, "run"), 0o700)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	os.Unsetenv("REGISTRY_AUTH_FILE")
}
