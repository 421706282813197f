package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/image/archive"
	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/layering"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

const testVersion = "test-1"

// lixLike makes a closure shaped like an application image: an app with a
// few libraries and data, a root tree, and the Nix database.
func lixLike(t *testing.T, s *store, system string, seed int64) *Input {
	t.Helper()
	var libs []string
	for i := 0; i < 5; i++ {
		libs = append(libs, s.data(fmt.Sprintf("lib%d-%d", i, seed), 20000+i*5000, seed*100+int64(i)))
	}
	app := s.app(fmt.Sprintf("app%d", seed), libs...)
	root := s.root(app, fmt.Sprintf("app%d", seed))
	return s.input("app", system, []string{app}, root, func(im *config.Image) {
		im.NixDB = true
		im.Config = config.ImageConfig{Cmd: []string{"/bin/app"}, Env: []string{"PATH=/bin"}, Labels: map[string]string{"org.opencontainers.image.title": "app", "org.opencontainers.image.version": testVersion}}
	})
}

// TestHelperBuild is run as a subprocess by TestReproducible: it builds
// the Input in $RELENG_IMAGE_HELPER_INPUT into $RELENG_IMAGE_HELPER_DIR.
func TestHelperBuild(t *testing.T) {
	inFile := os.Getenv("RELENG_IMAGE_HELPER_INPUT")
	if inFile == "" {
		t.Skip("only run as a subprocess of TestReproducible")
	}
	data, err := os.ReadFile(inFile)
	if err != nil {
		t.Fatal(err)
	}
	var in Input
	if err := json.Unmarshal(data, &in); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("RELENG_IMAGE_HELPER_DIR")
	res, err := Build(context.Background(), []*Input{&in}, BuildOptions{Dir: dir, RelengVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(res[0])
	if err := os.WriteFile(filepath.Join(dir, "result.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Two builds of the same closure, with GOMAXPROCS=1 and 2, in different
// temp dirs, give the same layer digests, image digest and docker-archive
// bytes, with gzip and with zstd layers.
func TestReproducible(t *testing.T) {
	for _, comp := range []string{"gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) { testReproducible(t, comp) })
	}
}

func testReproducible(t *testing.T, comp string) {
	s := newStore(t)
	in := lixLike(t, s, "x86_64-linux", 1)
	// A layer big enough for several compression blocks.
	big := s.data("big-repro", 3<<20, 99)
	in2 := s.input("app", "x86_64-linux", append(append([]string(nil), in.Contents...), big), in.Root, func(im *config.Image) {
		im.NixDB = true
		im.Config = in.Config
		im.Compression = comp
	})
	inFile := filepath.Join(t.TempDir(), "input.json")
	data, _ := json.Marshal(in2)
	os.WriteFile(inFile, data, 0o644)

	var results []*Result
	var dirs []string
	for _, procs := range []string{"1", "2"} {
		dir := filepath.Join(t.TempDir(), "procs"+procs, "images")
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBuild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs, "RELENG_IMAGE_HELPER_INPUT="+inFile, "RELENG_IMAGE_HELPER_DIR="+dir, "TMPDIR="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build with GOMAXPROCS=%s: %v\n%s", procs, err, out)
		}
		var r Result
		b, _ := os.ReadFile(filepath.Join(dir, "result.json"))
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		results = append(results, &r)
		dirs = append(dirs, dir)
	}
	a, b := results[0], results[1]
	if a.Manifest.Digest != b.Manifest.Digest {
		t.Errorf("image digests differ: %s vs %s", a.Manifest.Digest, b.Manifest.Digest)
	}
	for i := range a.Layers {
		if a.Layers[i].Digest != b.Layers[i].Digest || a.Layers[i].DiffID != b.Layers[i].DiffID {
			t.Errorf("layer %d differs: %s vs %s", i, a.Layers[i].Digest, b.Layers[i].Digest)
		}
	}
	if (a.Archive == "") != (comp == "zstd") {
		t.Errorf("%s image: docker-archive %q", comp, a.Archive)
	}
	if a.Archive != "" && fileSum(t, a.Archive) != fileSum(t, b.Archive) {
		t.Error("docker-archive bytes differ")
	}
	if fileSum(t, filepath.Join(a.Layout, "index.json")) != fileSum(t, filepath.Join(b.Layout, "index.json")) {
		t.Error("index.json differs")
	}
	if len(a.Layers) < 4 || a.Layers[len(a.Layers)-1].Kind != KindTop {
		t.Errorf("unexpected layers: %+v", a.Layers)
	}
	// Rebuilding in place with the cache reuses the blobs and gives the same image.
	cache := &Cache{Dir: t.TempDir()}
	r1, err := Build(context.Background(), []*Input{in2}, BuildOptions{Dir: filepath.Join(t.TempDir(), "images"), Cache: cache, RelengVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r2, err := Build(context.Background(), []*Input{in2}, BuildOptions{Dir: filepath.Dir(r1[0].Layout), Cache: cache, RelengVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if r1[0].Manifest.Digest != a.Manifest.Digest || r2[0].Manifest.Digest != a.Manifest.Digest {
		t.Errorf("cached rebuild gave %s, %s, want %s", r1[0].Manifest.Digest, r2[0].Manifest.Digest, a.Manifest.Digest)
	}
	t.Logf("rebuild with every layer cached: %s", time.Since(start))
}

// Independent readers: skopeo sees the multi-arch index; skopeo copy and
// umoci unpack give a rootfs whose /nix/store is the closure (NAR hashes
// compared) with /tmp 1777; Nix accepts the image's database; skopeo
// reads our docker-archive.
func TestIndependentReaders(t *testing.T) {
	isolateCredentials(t)
	s := newStore(t)
	amd := lixLike(t, s, "x86_64-linux", 2)
	// The aarch64 entry: another closure (its contents need not run here).
	armData := s.data("arm-payload", 30000, 7)
	arm := s.input("app", "aarch64-linux", []string{armData}, "", func(im *config.Image) { im.Config = amd.Config })

	dir := filepath.Join(t.TempDir(), "images")
	res, err := Build(context.Background(), []*Input{amd, arm}, BuildOptions{Dir: dir, RelengVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t)
	repo := reg.Addr + "/releng/app"
	pr, err := Push(context.Background(), []Source{{Layout: res[0].Layout}, {Layout: res[1].Layout}}, PushOptions{Dest: repo, Tags: []string{testVersion, "latest"}})
	if err != nil {
		t.Fatal(err)
	}

	raw := tool(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":"+testVersion)
	var idx oci.Index
	if err := json.Unmarshal([]byte(raw), &idx); err != nil {
		t.Fatalf("skopeo inspect --raw: %v\n%s", err, raw)
	}
	if idx.MediaType != oci.MediaTypeIndex || len(idx.Manifests) != 2 {
		t.Fatalf("index: %s", raw)
	}
	var archs []string
	for _, m := range idx.Manifests {
		archs = append(archs, m.Platform.OS+"/"+m.Platform.Architecture)
		if m.Digest != res[0].Manifest.Digest && m.Digest != res[1].Manifest.Digest {
			t.Errorf("index names %s, which is not a built manifest", m.Digest)
		}
	}
	sort.Strings(archs)
	if strings.Join(archs, " ") != "linux/amd64 linux/arm64" {
		t.Errorf("platforms = %v", archs)
	}
	if idx.Annotations["org.opencontainers.image.title"] != "app" || pr.Index.Digest != oci.Digest([]byte(raw)) {
		t.Errorf("index annotations %v, digest %s vs %s", idx.Annotations, pr.Index.Digest, oci.Digest([]byte(raw)))
	}
	tool(t, "skopeo", "inspect", "--tls-verify=false", "--override-arch", "arm64", "docker://"+repo+":latest")

	// skopeo copy + umoci unpack.
	work := t.TempDir()
	tool(t, "skopeo", "copy", "--src-tls-verify=false", "--override-arch", "amd64", "docker://"+repo+":"+testVersion, "oci:"+filepath.Join(work, "oci")+":x")
	bundle := filepath.Join(work, "bundle")
	tool(t, "umoci", "unpack", "--image", filepath.Join(work, "oci")+":x", bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	checkRootfs(t, rootfs, amd)

	// Nix accepts the image's database: path-info and verify against it.
	out := s.run("nix", "--extra-experimental-features", "nix-command", "path-info", "--store", rootfs, "--json", "--recursive", amd.Contents[0])
	infos, err := nixstore.ParsePathInfo([]byte(out), "nix path-info in the image", nixstore.DefaultStoreDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]nixstore.Hash{}
	for _, pi := range amd.Closure {
		want[pi.Path.String()] = pi.NarHash
	}
	for _, pi := range infos {
		if want[pi.Path.String()] != pi.NarHash {
			t.Errorf("the image's database has %s with hash %s", pi.Path, pi.NarHash)
		}
	}
	verify := s.nix.Command("nix-store", "--store", rootfs, "--verify", "--check-contents")
	if vout, err := verify.CombinedOutput(); err != nil || bytes.Contains(vout, []byte("modified")) {
		t.Errorf("nix-store --verify --check-contents in the image: %v\n%s", err, vout)
	}

	// Our docker-archive, read by skopeo.
	tool(t, "skopeo", "copy", "docker-archive:"+res[0].Archive, "oci:"+filepath.Join(work, "from-archive")+":x")
	cfg := tool(t, "skopeo", "inspect", "--config", "oci:"+filepath.Join(work, "from-archive")+":x")
	if !strings.Contains(cfg, "/bin/app") {
		t.Errorf("config read back from the archive: %s", cfg)
	}
	// And the OCI layout build wrote, by its version tag.
	tool(t, "skopeo", "inspect", "oci:"+res[0].Layout+":1.0")
}

// checkRootfs compares an unpacked rootfs with the closure of in.
func checkRootfs(t *testing.T, rootfs string, in *Input) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(rootfs, "nix", "store"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		got[e.Name()] = true
	}
	if len(got) != len(in.Closure) {
		t.Errorf("rootfs /nix/store has %d entries, the closure %d", len(got), len(in.Closure))
	}
	for _, pi := range in.Closure {
		p := filepath.Join(rootfs, "nix", "store", pi.Path.Base())
		if !got[pi.Path.Base()] {
			t.Errorf("%s missing from the rootfs", pi.Path)
			continue
		}
		r, err := nar.DumpPath(nil, p, nar.DumpOptions{Hash: true})
		if err != nil {
			t.Fatal(err)
		}
		if nixstore.Hash(r.SHA256) != pi.NarHash || r.Size != pi.NarSize {
			t.Errorf("%s: NAR hash %s (%d bytes) in the image, %s (%d) in the store", pi.Path, nixstore.Hash(r.SHA256), r.Size, pi.NarHash, pi.NarSize)
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		st, err := os.Stat(filepath.Join(rootfs, d))
		if err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
			t.Errorf("/%s: %v, %v (want drwxrwxrwt)", d, st.Mode(), err)
		}
	}
	if in.Root != "" {
		if target, err := os.Readlink(filepath.Join(rootfs, "bin", "app2")); err != nil || !strings.HasPrefix(target, "/nix/store/") {
			t.Errorf("root tree /bin/app2: %q, %v", target, err)
		}
	}
}

// Version N, then N+1 whose closure differs in one leaf path: the second
// push sends only the layer holding it — where nixpkgs' scheme would have
// re-sent its whole last layer.
func TestLayerStability(t *testing.T) {
	isolateCredentials(t)
	s := newStore(t)
	var libs []string
	for i := 0; i < 12; i++ {
		libs = append(libs, s.data(fmt.Sprintf("stable-lib%02d", i), 60000+i*7000, int64(1000+i)))
	}
	app := s.app("stable-app", libs...)
	docsN := s.data("stable-docs", 50000, 1)
	docsN1 := s.data("stable-docs", 50000, 2) // the same package, new content: a new leaf path
	mod := func(im *config.Image) { im.MaxLayers = 6; im.MaxLayerSize = "10MB" }
	vN := s.input("stable", "x86_64-linux", []string{app, docsN}, "", mod)
	vN1 := s.input("stable", "x86_64-linux", []string{app, docsN1}, "", mod)

	reg := testenv.StartRegistry(t)
	px := startProxy(t, reg.Addr)
	cache := &Cache{Dir: t.TempDir()}
	opts := PushOptions{Dest: px.Addr + "/releng/stable", Tags: []string{"n"}, Cache: cache, RelengVersion: "test"}
	if _, err := Push(context.Background(), []Source{{Input: vN}}, opts); err != nil {
		t.Fatal(err)
	}
	px.reset()
	opts.Tags = []string{"n1"}
	res, err := Push(context.Background(), []Source{{Input: vN1}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	wire, uploaded, _ := px.snapshot()

	pN, _ := vN.Plan("test")
	pN1, _ := vN1.Plan("test")
	var changed []*LayerSpec
	before := map[string]bool{}
	for _, l := range pN.Layers {
		before[l.Key] = true
	}
	for _, l := range pN1.Layers {
		if !before[l.Key] {
			changed = append(changed, l)
		}
	}
	if len(changed) != 1 || len(changed[0].Paths) != 1 || changed[0].Paths[0] != docsN1 {
		t.Fatalf("changed layers: %+v, want only the one holding %s", changed, docsN1)
	}
	docsLayer, _ := cache.Get(changed[0].Key)
	cfgDigest := ""
	for _, d := range uploaded {
		if d != docsLayer.Digest {
			cfgDigest = d
		}
	}
	if len(uploaded) != 2 || !contains(uploaded, docsLayer.Digest) {
		t.Fatalf("second push committed blobs %v; want the docs layer %s and the config", uploaded, docsLayer.Digest)
	}
	if res.Uploaded != 1 || res.Present != len(pN1.Layers)-1 {
		t.Errorf("push result: %d uploaded, %d present", res.Uploaded, res.Present)
	}
	ours := wire
	t.Logf("N+1 push: %d blob bytes on the wire (docs layer %d + config %s)", ours, docsLayer.Size, cfgDigest)
	if ours > docsLayer.Size+10000 {
		t.Errorf("sent %d bytes, more than the changed layer (%d) and a config", ours, docsLayer.Size)
	}

	// nixpkgs' scheme with the same budget: the most popular paths one per
	// layer, the rest — here the application and its docs — in one layer.
	graph := func(in *Input) *layering.Graph {
		var nodes []layering.Node
		for _, pi := range in.Closure {
			n := layering.Node{Path: pi.Path.String(), Size: int64(pi.NarSize)}
			for _, r := range pi.References {
				n.References = append(n.References, r.String())
			}
			nodes = append(nodes, n)
		}
		g, err := layering.NewGraph(nodes)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	budget := vN.MaxLayers - 1
	nN := nixpkgsLayers(graph(vN), budget)
	nN1 := nixpkgsLayers(graph(vN1), budget)
	old := map[string]bool{}
	for _, l := range nN {
		old[strings.Join(l, " ")] = true
	}
	var nixpkgsBytes int64
	for _, l := range nN1 {
		if old[strings.Join(l, " ")] {
			continue
		}
		d, err := layer.Build(io.Discard, layer.Gzip, func(w io.Writer) error { return layer.WriteStorePaths(w, "/nix/store", l) })
		if err != nil {
			t.Fatal(err)
		}
		nixpkgsBytes += d.Size
		t.Logf("nixpkgs-style would re-send a layer of %d paths, %d bytes", len(l), d.Size)
	}
	if nixpkgsBytes <= 2*docsLayer.Size {
		t.Errorf("nixpkgs-style would send %d bytes, ours %d: expected it to send much more", nixpkgsBytes, docsLayer.Size)
	}
	t.Logf("layer bytes for N+1: releng %d, nixpkgs-style %d", docsLayer.Size, nixpkgsBytes)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Pushing straight from the store gives the image a build gives; an oci:
// destination holds the same index; a second repository of the registry
// mounts the blobs; a push with nothing changed sends no blob.
func TestPushFromStore(t *testing.T) {
	isolateCredentials(t)
	s := newStore(t)
	in := lixLike(t, s, "x86_64-linux", 3)
	built, err := Build(context.Background(), []*Input{in}, BuildOptions{Dir: filepath.Join(t.TempDir(), "images"), RelengVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t)
	cache := &Cache{Dir: t.TempDir()}
	var lines []string
	opts := PushOptions{Dest: reg.Addr + "/one/app", Tags: []string{testVersion}, Cache: cache, RelengVersion: "test", ChunkSize: 64 << 10,
		Progress: func(s string) { lines = append(lines, s) }}
	res, err := Push(context.Background(), []Source{{Input: in}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Images[0].Manifest.Digest != built[0].Manifest.Digest {
		t.Errorf("pushed from the store: %s; built: %s", res.Images[0].Manifest.Digest, built[0].Manifest.Digest)
	}
	if res.Uploaded != len(built[0].Layers) {
		t.Errorf("%d layers uploaded, want %d", res.Uploaded, len(built[0].Layers))
	}
	// Nothing changed: HEADs only.
	again, err := Push(context.Background(), []Source{{Input: in}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.BlobBytes != 0 || again.Uploaded != 0 {
		t.Errorf("second push sent %d bytes, %d layers", again.Stats.BlobBytes, again.Uploaded)
	}
	// Another repository of the same registry: mounted, not sent.
	opts.Dest = reg.Addr + "/two/app"
	mounted, err := Push(context.Background(), []Source{{Layout: built[0].Layout}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if mounted.Mounted != len(built[0].Layers) || mounted.Stats.BlobBytes > built[0].Config.Size {
		t.Errorf("push to a second repository: %d mounted, %d bytes sent", mounted.Mounted, mounted.Stats.BlobBytes)
	}
	// An OCI layout destination.
	layout := filepath.Join(t.TempDir(), "local-images")
	if _, err := Push(context.Background(), []Source{{Layout: built[0].Layout}}, PushOptions{Dest: "oci:" + layout, Tags: []string{testVersion, "latest"}}); err != nil {
		t.Fatal(err)
	}
	raw := tool(t, "skopeo", "inspect", "--raw", "oci:"+layout+":latest")
	if !strings.Contains(raw, oci.MediaTypeIndex) || !strings.Contains(raw, built[0].Manifest.Digest) {
		t.Errorf("oci: layout index: %s", raw)
	}
	if len(lines) == 0 {
		t.Error("no progress reported")
	}
}

// A 404 on the index put is retried with backoff; a registry that keeps
// answering 404 fails the push after the retry limit, saying so.
func TestIndexPutRetries404(t *testing.T) {
	isolateCredentials(t)
	s := newStore(t)
	in := s.input("retry", "x86_64-linux", []string{s.data("retry-data", 1000, 5)}, "", nil)
	reg := testenv.StartRegistry(t)
	px := startProxy(t, reg.Addr)
	px.fail404 = 2
	start := time.Now()
	_, err := Push(context.Background(), []Source{{Input: in}}, PushOptions{Dest: px.Addr + "/retry", Tags: []string{"x"}})
	if err != nil {
		t.Fatalf("push with two 404s on the index: %v", err)
	}
	if _, _, puts := px.snapshot(); puts != 3 {
		t.Errorf("%d index puts, want 3", puts)
	}
	t.Logf("two 404s cost %s", time.Since(start))
	px.fail404 = 1000
	_, err = Push(context.Background(), []Source{{Input: in}}, PushOptions{Dest: px.Addr + "/retry", Tags: []string{"y"}, IndexRetry: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "retrying") {
		t.Fatalf("err = %v, want a failure after retrying", err)
	}
}

// dockerToolsArchive writes an archive shaped like nixpkgs' dockerTools
// output: gzipped as a whole, uncompressed layer.tar files in directories.
func dockerToolsArchive(t *testing.T, files ...map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o444, ModTime: time.Unix(1, 0)})
		tw.Write(data)
	}
	cfg := oci.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: oci.RootFS{Type: "layers"}, Config: config.ImageConfig{Labels: map[string]string{"built-by": "dockerTools"}}}
	var layers []string
	for _, fs := range files {
		var lb bytes.Buffer
		lw := tar.NewWriter(&lb)
		var names []string
		for n := range fs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			lw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Size: int64(len(fs[n])), Mode: 0o444, ModTime: time.Unix(1, 0)})
			lw.Write([]byte(fs[n]))
		}
		lw.Close()
		diff := oci.Digest(lb.Bytes())
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diff)
		name := oci.Hex(diff) + "/layer.tar"
		put(name, lb.Bytes())
		layers = append(layers, name)
	}
	cb, _ := json.Marshal(cfg)
	put(oci.Hex(oci.Digest(cb))+".json", cb)
	mb, _ := json.Marshal([]map[string]any{{"Config": oci.Hex(oci.Digest(cb)) + ".json", "RepoTags": []string{"lix:2.93.0"}, "Layers": layers}})
	put("manifest.json", mb)
	tw.Close()
	p := filepath.Join(t.TempDir(), "lix-2.93.0-docker-image-x86_64-linux.tar.gz")
	f, _ := os.Create(p)
	zw := gzip.NewWriter(f)
	zw.Write(buf.Bytes())
	zw.Close()
	f.Close()
	return p
}

// A docker-archive Nix built is validated, then pushed with its own layers
// (compressed on the way); a second push sends nothing.
func TestPushArchive(t *testing.T) {
	isolateCredentials(t)
	path := dockerToolsArchive(t,
		map[string]string{"nix/store/aaaa-lix/bin/nix": strings.Repeat("nix binary ", 5000)},
		map[string]string{"etc/passwd": "root:x:0:0::/:/bin/sh\n"})
	a, err := archive.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t)
	cache := &Cache{Dir: t.TempDir()}
	opts := PushOptions{Dest: reg.Addr + "/lix", Tags: []string{"2.93.0"}, Cache: cache, RelengVersion: "test"}
	res, err := Push(context.Background(), []Source{{Archive: a}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != 2 {
		t.Errorf("%d layers uploaded", res.Uploaded)
	}
	cfg := tool(t, "skopeo", "inspect", "--tls-verify=false", "--config", "docker://"+reg.Addr+"/lix:2.93.0")
	if !strings.Contains(cfg, "dockerTools") {
		t.Errorf("config: %s", cfg)
	}
	work := t.TempDir()
	tool(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg.Addr+"/lix:2.93.0", "oci:"+filepath.Join(work, "oci")+":x")
	tool(t, "umoci", "unpack", "--image", filepath.Join(work, "oci")+":x", filepath.Join(work, "bundle"))
	if b, err := os.ReadFile(filepath.Join(work, "bundle", "rootfs", "etc", "passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("unpacked /etc/passwd: %q, %v", b, err)
	}
	again, err := Push(context.Background(), []Source{{Archive: a}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.BlobBytes != 0 {
		t.Errorf("second push of the archive sent %d bytes", again.Stats.BlobBytes)
	}
}

func TestPushErrors(t *testing.T) {
	isolateCredentials(t)
	s := newStore(t)
	in := s.input("errs", "x86_64-linux", []string{s.data("errs-data", 1000, 6)}, "", nil)
	ctx := context.Background()
	tests := []struct {
		name string
		src  []Source
		opts PushOptions
		want string
	}{
		{"no tags", []Source{{Input: in}}, PushOptions{Dest: "oci:" + t.TempDir()}, "no tags"},
		{"bad tag", []Source{{Input: in}}, PushOptions{Dest: "oci:" + t.TempDir(), Tags: []string{"2.93.0+local"}}, "--tag"},
		{"two images for one platform", []Source{{Input: in}, {Input: in}}, PushOptions{Dest: "oci:" + t.TempDir(), Tags: []string{"x"}}, "one per platform"},
		{"missing layout", []Source{{Layout: filepath.Join(t.TempDir(), "nope")}}, PushOptions{Dest: "oci:" + t.TempDir(), Tags: []string{"x"}}, "releng image build"},
		{"nothing", nil, PushOptions{Dest: "oci:" + t.TempDir(), Tags: []string{"x"}}, "nothing to push"},
		{"unreachable registry", []Source{{Input: in}}, PushOptions{Dest: fmt.Sprintf("127.0.0.1:%d/x", testenv.FreePort(t)), Tags: []string{"x"}}, "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Push(ctx, tc.src, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestFromConfigErrors(t *testing.T) {
	base := config.Image{Name: "x", MaxLayers: 100, MaxLayerSize: "65MB", Compression: "gzip"}
	tests := []struct {
		name string
		mod  func(*config.Image)
		sys  string
		want string
	}{
		{"max_layers 0", func(im *config.Image) { im.MaxLayers = 0 }, "x86_64-linux", "between 2 and 125"},
		{"max_layers 200", func(im *config.Image) { im.MaxLayers = 200 }, "x86_64-linux", "between 2 and 125"},
		{"bad size", func(im *config.Image) { im.MaxLayerSize = "lots" }, "x86_64-linux", "max_layer_size"},
		{"bad compression", func(im *config.Image) { im.Compression = "xz" }, "x86_64-linux", "gzip"},
		{"darwin", nil, "aarch64-darwin", "Linux"},
		{"upper-case name", func(im *config.Image) { im.Name = "Lix" }, "x86_64-linux", "lower-case"},
		{"bad created", func(im *config.Image) { im.Created = "yesterday" }, "x86_64-linux", "RFC 3339"},
		{"relative tmp dir", func(im *config.Image) { im.TmpDirs = []string{"tmp"} }, "x86_64-linux", "absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im := base
			if tc.mod != nil {
				tc.mod(&im)
			}
			_, err := FromConfig(&im, tc.sys, "1.0")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestBuiltSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, sys, version string) {
		idx := oci.Index{SchemaVersion: 2, Manifests: []oci.Descriptor{{Digest: "sha256:" + strings.Repeat("a", 64), Annotations: map[string]string{oci.AnnotationRefName: version}}}}
		b, _ := json.Marshal(idx)
		os.MkdirAll(LayoutPath(dir, name, sys), 0o755)
		os.WriteFile(filepath.Join(LayoutPath(dir, name, sys), "index.json"), b, 0o644)
	}
	write("lix", "x86_64-linux", "2.93.0")
	write("lix", "aarch64-linux", "2.92.0")
	srcs, err := BuiltSources(dir, "lix", []string{"x86_64-linux"}, "2.93.0")
	if err != nil || len(srcs) != 1 || srcs[0].Layout != LayoutPath(dir, "lix", "x86_64-linux") {
		t.Fatalf("BuiltSources = %v, %v", srcs, err)
	}
	for sys, want := range map[string]string{"aarch64-linux": "holds version", "riscv64-linux": "was not built"} {
		if _, err := BuiltSources(dir, "lix", []string{sys}, "2.93.0"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", sys, err, want)
		}
	}
	if s := Systems(&config.Image{}); len(s) != 1 || s[0] != HostSystem() {
		t.Errorf("default systems = %v", s)
	}
}

// zstd images: an OCI layout with zstd layers (the same for any GOMAXPROCS:
// TestReproducible), no docker-archive, and independent readers unpack
// them: skopeo copy (from the layout, and from an oci: push destination)
// and umoci unpack give the closure, NAR hashes compared.
func TestZstdImage(t *testing.T) {
	s := newStore(t)
	base := lixLike(t, s, "x86_64-linux", 2) // seed 2: checkRootfs looks for /bin/app2
	// 12 MiB of text: its layer is several independent zstd frames
	// (layer.zstdFrame of input each), which skopeo must read as one
	// stream for checkRootfs to find the NAR hashes of the store.
	big := s.data("zstd-data", 12<<20, 8)
	in := s.input("zst", "x86_64-linux", append(append([]string(nil), base.Contents...), big), base.Root, func(im *config.Image) {
		im.Compression = "zstd"
		im.Config = base.Config
	})
	res, err := Build(context.Background(), []*Input{in}, BuildOptions{Dir: filepath.Join(t.TempDir(), "images")})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Archive != "" {
		t.Errorf("a zstd image got a docker-archive: %s", r.Archive)
	}
	for _, l := range r.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}
	umoci := testenv.UmociZstd(t)
	raw := tool(t, "skopeo", "inspect", "--raw", "oci:"+r.Layout+":1.0")
	if !strings.Contains(raw, "tar+zstd") {
		t.Errorf("skopeo sees %s", raw)
	}
	work := t.TempDir()
	// Our own blobs, as releng wrote them (frames and all), and below the
	// copies skopeo made of them and of a push.
	direct := filepath.Join(work, "direct")
	if out, err := exec.Command(umoci, "unpack", "--image", r.Layout+":1.0", direct).CombinedOutput(); err != nil {
		t.Fatalf("umoci-0.6.0 unpack of releng's zstd layout: %v\n%s", err, out)
	}
	checkRootfs(t, filepath.Join(direct, "rootfs"), in)
	dest := "oci:" + filepath.Join(work, "pushed")
	if _, err := Push(context.Background(), []Source{{Layout: r.Layout}}, PushOptions{Dest: dest, Tags: []string{testVersion}}); err != nil {
		t.Fatal(err)
	}
	for i, src := range []string{"oci:" + r.Layout + ":1.0", dest + ":" + testVersion} {
		copied := filepath.Join(work, fmt.Sprintf("copy%d", i))
		tool(t, "skopeo", "copy", src, "oci:"+copied+":x")
		if raw := tool(t, "skopeo", "inspect", "--raw", "oci:"+copied+":x"); !strings.Contains(raw, "tar+zstd") {
			t.Errorf("skopeo copy of %s did not keep the zstd layers: %s", src, raw)
		}
		// Debian 12's umoci (0.4.7) refuses zstd layers by media type;
		// umoci 0.6.0 reads them.
		bundle := filepath.Join(work, fmt.Sprintf("bundle%d", i))
		if out, err := exec.Command(umoci, "unpack", "--image", copied+":x", bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci-0.6.0 unpack of zstd layers: %v\n%s", err, out)
		}
		checkRootfs(t, filepath.Join(bundle, "rootfs"), in)
	}
}
