package image

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/image/archive"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/testenv"
)

// wireLog is a transport that records what a push makes a registry keep:
// blobs committed (PUT …?digest=) or mounted (POST …?mount= answered 201),
// manifests put by digest and tags put.
type wireLog struct {
	mu   sync.Mutex
	sent []string
}

func (w *wireLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		return resp, err
	}
	q := req.URL.Query()
	what := ""
	switch {
	case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/"):
		what = "blob " + q.Get("digest")
	case req.Method == http.MethodPost && q.Get("mount") != "":
		what = "blob " + q.Get("mount")
	case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/"):
		ref := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
		if registry.ValidDigest(ref) == nil {
			what = "manifest " + ref
		} else {
			what = "index " + ref
		}
	}
	if what != "" {
		w.mu.Lock()
		w.sent = append(w.sent, what)
		w.mu.Unlock()
	}
	return resp, err
}

// observer says what a push changed at a destination.
type observer interface {
	start()
	changed(planned []plan.Object) []string
}

func (w *wireLog) start() { w.mu.Lock(); w.sent = nil; w.mu.Unlock() }

func (w *wireLog) changed([]plan.Object) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.sent...)
}

// layoutWatch compares an OCI layout before and after a push: blob files
// that appear or are rewritten (another inode), and tags of index.json
// that appear or name another index.
type layoutWatch struct {
	dir   string
	files map[string]uint64
	tags  map[string]string
}

func (l *layoutWatch) state() (map[string]uint64, map[string]string) {
	files := map[string]uint64{}
	entries, _ := os.ReadDir(filepath.Join(l.dir, "blobs", "sha256"))
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			files[e.Name()] = info.Sys().(*syscall.Stat_t).Ino
		}
	}
	tags := map[string]string{}
	var idx oci.Index
	if data, err := os.ReadFile(filepath.Join(l.dir, "index.json")); err == nil && json.Unmarshal(data, &idx) == nil {
		for _, m := range idx.Manifests {
			tags[m.Annotations[oci.AnnotationRefName]] = m.Digest
		}
	}
	return files, tags
}

func (l *layoutWatch) start() { l.files, l.tags = l.state() }

func (l *layoutWatch) changed(planned []plan.Object) []string {
	files, tags := l.state()
	kind := map[string]string{}
	for _, o := range planned {
		if o.Kind != plan.KindIndex {
			kind[o.Digest] = o.Kind
		}
	}
	var out []string
	for name, ino := range files {
		if l.files[name] == ino {
			continue
		}
		switch k := kind["sha256:"+name]; k {
		case plan.KindBlob, plan.KindManifest:
			out = append(out, k+" sha256:"+name)
		default:
			// An index's own blob, written with its first tag.
		}
	}
	for tag, d := range tags {
		if l.tags[tag] != d {
			out = append(out, "index "+tag)
		}
	}
	return out
}

// sends lists what a plan sends, as observers name it.
func sends(objs []plan.Object) []string {
	var out []string
	for _, o := range objs {
		if !o.Sends() {
			continue
		}
		if o.Kind == plan.KindIndex {
			out = append(out, "index "+o.Key)
		} else {
			out = append(out, o.Kind+" "+o.Digest)
		}
	}
	return out
}

func sortedJoin(list []string) string {
	s := append([]string(nil), list...)
	sort.Strings(s)
	return strings.Join(s, "\n")
}

func describe(objs []plan.Object) string {
	var b strings.Builder
	for _, o := range objs {
		fmt.Fprintf(&b, "  %-8s %-7s %s %d %s %s\n", o.Kind, o.Why, o.Key, o.Size, o.Digest, o.Detail)
	}
	return b.String()
}

// exactRound plans srcs, pushes them, and checks that what the push sent
// — at the destination (obs), and as Push reports it (opts.Sent), digests
// and sizes included — is exactly what the plan marked New or Changed;
// then that a new plan has every object Present. It returns the plan.
func exactRound(t *testing.T, name string, srcs []Source, opts PushOptions, obs observer) []plan.Object {
	t.Helper()
	ctx := context.Background()
	objs, err := PlanPush(ctx, srcs, opts)
	if err != nil {
		t.Fatalf("%s: PlanPush: %v", name, err)
	}
	var mu sync.Mutex
	var reported []plan.Object
	opts.Sent = func(o plan.Object) { mu.Lock(); reported = append(reported, o); mu.Unlock() }
	obs.start()
	res, err := Push(ctx, srcs, opts)
	if err != nil {
		t.Fatalf("%s: Push: %v", name, err)
	}
	want := sends(objs)
	if got := obs.changed(objs); sortedJoin(got) != sortedJoin(want) {
		t.Errorf("%s: the plan sends\n%s\nthe destination received\n%s\nplan:\n%s", name, sortedJoin(want), sortedJoin(got), describe(objs))
	}
	key := func(o plan.Object) string {
		return fmt.Sprintf("%s %s %s %d %s", o.Kind, o.Key, o.Digest, o.Size, o.Dest)
	}
	var planned, told []string
	for _, o := range objs {
		if o.Sends() {
			planned = append(planned, key(o))
		}
	}
	for _, o := range reported {
		told = append(told, key(o))
	}
	if sortedJoin(planned) != sortedJoin(told) {
		t.Errorf("%s: the plan sends\n%s\nPush reports\n%s", name, sortedJoin(planned), sortedJoin(told))
	}
	// The index Push put is the one the plan announced.
	for _, o := range objs {
		if o.Kind == plan.KindIndex && (o.Digest != res.Index.Digest || o.Size != res.Index.Size) {
			t.Errorf("%s: tag %s planned with index %s (%d bytes), Push put %s (%d)", name, o.Key, o.Digest, o.Size, res.Index.Digest, res.Index.Size)
		}
	}
	again, err := PlanPush(ctx, srcs, opts)
	if err != nil {
		t.Fatalf("%s: PlanPush after the push: %v", name, err)
	}
	for _, o := range again {
		if o.Why != plan.Present {
			t.Errorf("%s: after the push, %s %s is %s (%s)", name, o.Kind, o.Key, o.Why, o.Detail)
		}
	}
	if len(again) != len(objs) {
		t.Errorf("%s: %d objects planned before the push, %d after", name, len(objs), len(again))
	}
	var bytes int64
	for _, o := range objs {
		if o.Sends() {
			bytes += o.Size
		}
	}
	t.Logf("%s: %d objects planned, %d to send (%d bytes); the destination received %d, Push reported %d, sent %d blob bytes",
		name, len(objs), len(want), bytes, len(obs.changed(objs)), len(reported), res.Stats.BlobBytes)
	return objs
}

// planImages builds a two-platform image A and a one-platform image B
// sharing two store paths (and so two layers) with A's amd64 image.
func planImages(t *testing.T) (a, b []Source) {
	s := newStore(t)
	lib0 := s.data("plan-lib0", 40000, 301)
	lib1 := s.data("plan-lib1", 30000, 302)
	docsA := s.data("plan-docs", 20000, 303)
	docsB := s.data("plan-docs", 20000, 304)
	armData := s.data("plan-arm", 25000, 305)
	labels := func(im *config.Image) {
		im.Config = config.ImageConfig{Labels: map[string]string{"org.opencontainers.image.title": im.Name}}
	}
	inputs := []*Input{
		s.input("plana", "x86_64-linux", []string{lib0, lib1, docsA}, "", labels),
		s.input("plana", "aarch64-linux", []string{armData}, "", labels),
		s.input("planb", "x86_64-linux", []string{lib0, lib1, docsB}, "", labels),
	}
	res, err := Build(context.Background(), inputs, BuildOptions{Dir: filepath.Join(t.TempDir(), "images"), RelengVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return []Source{{Layout: res[0].Layout}, {Layout: res[1].Layout}}, []Source{{Layout: res[2].Layout}}
}

func whyOf(objs []plan.Object) map[plan.Why]int {
	n := map[plan.Why]int{}
	for _, o := range objs {
		n[o.Why]++
	}
	return n
}

// PlanPush is exact: on a registry and on an oci: layout, empty, holding
// some of the blobs, holding a tag that names another index, and holding
// everything, what the plan marks New or Changed is exactly what Push
// then sends (blobs mounted count as sent: the destination did not have
// them), and a plan made after the push has every object Present.
func TestPlanPushExact(t *testing.T) {
	isolateCredentials(t)
	a, b := planImages(t)
	reg := testenv.StartRegistry(t)
	wire := &wireLog{}
	cache := &Cache{Dir: t.TempDir()}

	type dest struct {
		name string
		at   func(repo string) (string, observer)
	}
	dests := []dest{
		{"registry", func(repo string) (string, observer) { return reg.Addr + "/" + repo, wire }},
		{"oci", func(repo string) (string, observer) {
			dir := filepath.Join(t.TempDir(), repo)
			return registry.OCIPrefix + dir, &layoutWatch{dir: dir}
		}},
	}
	for _, d := range dests {
		t.Run(d.name, func(t *testing.T) {
			opts := func(to string, tags ...string) PushOptions {
				return PushOptions{Dest: to, Tags: tags, Cache: cache, RelengVersion: "test", Transport: wire}
			}
			// (a) An empty destination: everything is New; an oci:
			// directory that does not exist is not created by planning.
			to, obs := d.at("empty")
			objs, err := PlanPush(context.Background(), a, opts(to, "1.0", "latest"))
			if err != nil {
				t.Fatal(err)
			}
			if dir, ok := strings.CutPrefix(to, registry.OCIPrefix); ok {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("PlanPush made %s: %v", dir, err)
				}
			}
			if n := whyOf(objs); n[plan.New] != len(objs) {
				t.Errorf("empty destination: %v\n%s", n, describe(objs))
			}
			exactRound(t, "empty", a, opts(to, "1.0", "latest", "1.0"), obs)

			// (b) Some blobs there: B, which shares two layers and the top
			// layer with A's amd64 image, was pushed first.
			to, obs = d.at("shared")
			exactRound(t, "B first", b, opts(to, "b"), obs)
			objs = exactRound(t, "A after B", a, opts(to, "1.0"), obs)
			if n := whyOf(objs); n[plan.Present] != 3 || n[plan.New] != len(objs)-3 {
				t.Errorf("A after B: %v, want the 3 shared layers present\n%s", n, describe(objs))
			}

			// (b) A tag naming another index: latest moved to B.
			to, obs = d.at("retag")
			exactRound(t, "A tagged", a, opts(to, "1.0", "latest"), obs)
			exactRound(t, "B to latest", b, opts(to, "latest"), obs)
			objs = exactRound(t, "A to latest again", a, opts(to, "1.0", "latest"), obs)
			n := whyOf(objs)
			if n[plan.Changed] != 1 || n[plan.Present] != len(objs)-1 {
				t.Errorf("A to latest again: %v\n%s", n, describe(objs))
			}
			for _, o := range objs {
				if o.Why == plan.Changed && (o.Key != "latest" || !strings.HasPrefix(o.Detail, "names sha256:")) {
					t.Errorf("changed: %+v", o)
				}
			}

			// (c) Everything there: nothing to send, and nothing sent.
			objs = exactRound(t, "all present", a, opts(to, "1.0", "latest"), obs)
			if n := whyOf(objs); n[plan.Present] != len(objs) {
				t.Errorf("all present: %v", n)
			}
		})
	}

	// Another repository of the registry: the blobs the cache places in
	// "shared" are planned New ("may be mounted") and mounted.
	objs := exactRound(t, "mount", a, PushOptions{Dest: reg.Addr + "/mounted", Tags: []string{"1.0"}, Cache: cache, RelengVersion: "test", Transport: wire}, wire)
	mounts := 0
	for _, o := range objs {
		if strings.HasPrefix(o.Detail, "may be mounted from ") {
			mounts++
		}
	}
	if mounts == 0 {
		t.Errorf("no blob planned as mountable:\n%s", describe(objs))
	}
}

// A docker-archive with uncompressed layers (as dockerTools writes them)
// plans exactly: its layers are compressed at plan time, as Push compresses
// them, and the digests handed to Push through the cache; without a cache
// they are planned as sent whatever the registry holds, as Push sends them.
func TestPlanPushArchive(t *testing.T) {
	isolateCredentials(t)
	// Three layers, one of several compression blocks (1 MiB each).
	var lib strings.Builder
	for i := 0; lib.Len() < 3<<20; i++ {
		fmt.Fprintf(&lib, "symbol_%x ", i*7919)
	}
	files := []map[string]string{
		{"nix/store/bbbb-liblix/lib/liblix.so": lib.String()},
		{"nix/store/cccc-lix/bin/nix": strings.Repeat("nix binary ", 5000)},
		{"etc/group": "root:x:0:\n"},
	}
	a, err := archive.Inspect(dockerToolsArchive(t, files...))
	if err != nil {
		t.Fatal(err)
	}
	srcs := []Source{{Archive: a}}
	reg := testenv.StartRegistry(t)
	wire := &wireLog{}
	opts := PushOptions{Dest: reg.Addr + "/lix", Tags: []string{"2.93.0"}, Cache: &Cache{Dir: t.TempDir()}, RelengVersion: "test", Transport: wire}
	objs := exactRound(t, "archive", srcs, opts, wire)
	if len(objs) != 6 { // 3 layers, config, manifest, tag
		t.Errorf("archive plan:\n%s", describe(objs))
	}
	for _, o := range objs {
		if o.Size < 0 || o.Digest == "" {
			t.Errorf("archive object of unknown digest: %+v", o)
		}
	}
	exactRound(t, "archive, present", srcs, opts, wire)

	// No cache: Push cannot know the compressed digests, so it sends the
	// layers again; the plan says so.
	noCache := opts
	noCache.Cache = nil
	objs, err = PlanPush(context.Background(), srcs, noCache)
	if err != nil {
		t.Fatal(err)
	}
	wire.start()
	if _, err := Push(context.Background(), srcs, noCache); err != nil {
		t.Fatal(err)
	}
	if want, got := sends(objs), wire.changed(nil); sortedJoin(want) != sortedJoin(got) || len(want) != 3 {
		t.Errorf("without a cache the plan sends\n%s\nthe registry received\n%s", sortedJoin(want), sortedJoin(got))
	}
}

// A store source whose layers the cache does not know plans them as New
// of unknown size and digest, and so its config, manifest and index.
func TestPlanPushFromStore(t *testing.T) {
	s := newStore(t)
	in := s.input("unknown", "x86_64-linux", []string{s.data("unknown-data", 2000, 401)}, "", nil)
	to := filepath.Join(t.TempDir(), "layout")
	opts := PushOptions{Dest: registry.OCIPrefix + to, Tags: []string{"x"}, Cache: &Cache{Dir: t.TempDir()}, RelengVersion: "test"}
	objs, err := PlanPush(context.Background(), []Source{{Input: in}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Why != plan.New || o.Size != -1 || o.Digest != "" {
			t.Errorf("unknown layers: %+v", o)
		}
	}
	// Once pushed, the cache knows the layers and the plan is exact.
	if _, err := Push(context.Background(), []Source{{Input: in}}, opts); err != nil {
		t.Fatal(err)
	}
	exactRound(t, "from the store, cached", []Source{{Input: in}}, opts, &layoutWatch{dir: to})
}

// CheckPushed reads the objects of a plan back and names what differs: a
// tag moved to another index, a blob file changed by a byte, a blob or a
// manifest gone.
func TestCheckPushed(t *testing.T) {
	isolateCredentials(t)
	a, b := planImages(t)
	reg := testenv.StartRegistry(t)
	ctx := context.Background()
	for _, to := range []string{reg.Addr + "/check", registry.OCIPrefix + filepath.Join(t.TempDir(), "check")} {
		opts := PushOptions{Dest: to, Tags: []string{"1.0", "latest"}, Cache: &Cache{Dir: t.TempDir()}, RelengVersion: "test"}
		if _, err := Push(ctx, a, opts); err != nil {
			t.Fatal(err)
		}
		objs, err := PlanPush(ctx, a, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i, err := range CheckPushed(ctx, objs, opts) {
			if err != nil {
				t.Errorf("%s: freshly pushed %s %s: %v", to, objs[i].Kind, objs[i].Key, err)
			}
		}
		// latest now names B's index.
		if _, err := Push(ctx, b, PushOptions{Dest: to, Tags: []string{"latest"}}); err != nil {
			t.Fatal(err)
		}
		var layerObj, manifestObj plan.Object
		for _, o := range objs {
			if o.Kind == plan.KindBlob && layerObj.Key == "" && o.Size > 1000 {
				layerObj = o
			}
			if o.Kind == plan.KindManifest && manifestObj.Key == "" {
				manifestObj = o
			}
		}
		local, isDir := strings.CutPrefix(to, registry.OCIPrefix)
		if isDir {
			// A byte of a layer changed; a manifest deleted.
			p := filepath.Join(local, "blobs", "sha256", oci.Hex(layerObj.Digest))
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 1
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(local, "blobs", "sha256", oci.Hex(manifestObj.Digest))); err != nil {
				t.Fatal(err)
			}
		} else {
			// A layer deleted from the registry.
			u := "http://" + reg.Addr + "/v2/check/blobs/" + url.PathEscape(layerObj.Digest)
			req, _ := http.NewRequest(http.MethodDelete, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("DELETE %s: %v %v", u, resp, err)
			}
			resp.Body.Close()
		}
		errs := CheckPushed(ctx, objs, opts)
		got := map[string]string{}
		for i, err := range errs {
			if err != nil {
				got[objs[i].Kind+" "+objs[i].Key] = err.Error()
			}
		}
		want := map[string][]string{
			"index latest":                   {to + ":latest", "names index", "not the planned", "lacks the x86_64-linux manifest", "lacks the aarch64-linux manifest", "which the plan does not"},
			"blob " + layerObj.Digest:        {to, "blob " + layerObj.Digest, "missing"},
			"manifest " + manifestObj.Digest: {to, "manifest " + manifestObj.Digest, "missing"},
		}
		if isDir {
			want["blob "+layerObj.Digest] = []string{to, "blob " + layerObj.Digest, "hash to", "changed"}
			// The index of 1.0 lists the deleted manifest.
			want["index 1.0"] = []string{to + ":1.0", "the destination lacks"}
		} else {
			delete(want, "manifest "+manifestObj.Digest)
		}
		for k, parts := range want {
			for _, p := range parts {
				if !strings.Contains(got[k], p) {
					t.Errorf("%s: %s: error %q does not say %q", to, k, got[k], p)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: errors for %d objects, want %d: %v", to, len(got), len(want), got)
		}
		t.Logf("%s: %v", to, got)
	}
}

func TestParseDest(t *testing.T) {
	cwd, _ := os.Getwd()
	for _, tc := range []struct{ in, root, want string }{
		{"oci:release/local/images", "/project", "oci:/project/release/local/images"},
		{"oci:/abs/dir/", "/project", "oci:/abs/dir"},
		{"oci:../x", "/project/sub", "oci:/project/x"},
		{"oci:rel", "", "oci:" + filepath.Join(cwd, "rel")},
		{"ghcr.io/lix-project/lix", "/project", "ghcr.io/lix-project/lix"},
		{"127.0.0.1:5000/lix", "", "127.0.0.1:5000/lix"},
	} {
		d, err := registry.ParseDest(tc.in, tc.root)
		if err != nil || d.String() != tc.want {
			t.Errorf("ParseDest(%q, %q) = %q, %v; want %q", tc.in, tc.root, d.String(), err, tc.want)
		}
	}
	for in, want := range map[string]string{"oci:": "needs a directory", "https://ghcr.io/x": "without a scheme", "ghcr.io/x:1.0": "--tag", "ghcr.io/UPPER": "not a repository"} {
		if _, err := registry.ParseDest(in, "/project"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDest(%q): %v, want it to say %q", in, err, want)
		}
	}
}
