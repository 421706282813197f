// Package images benchmarks `releng image build` + `releng image push`
// against what a user would do without releng — `umoci insert` of each
// store path into an OCI layout, then `skopeo copy` to the registry — side
// by side, on the same closure and the same local registry (SPEC §12).
//
// Run it with bench/images/run.sh, which writes RESULTS.md.
package images

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/testenv"
)

// measured is one timed command.
type measured struct {
	wall  time.Duration
	rssKB int64
	cpu   time.Duration // user + system
}

// runTimed runs a command and returns its wall time and peak RSS. The
// RSS comes from GNU time when it is installed: the rusage of a child of
// this (large) test process would start at this process's own RSS.
func runTimed(b *testing.B, env []string, dir, name string, args ...string) measured {
	b.Helper()
	rssFile := filepath.Join(b.TempDir(), "rss")
	argv := append([]string{name}, args...)
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		argv = append([]string{"/usr/bin/time", "-f", "%M %U %S", "-o", rssFile}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	var rss int64
	var user, sys float64
	if data, err := os.ReadFile(rssFile); err == nil {
		fmt.Sscan(string(data), &rss, &user, &sys)
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	cpu := time.Duration((user + sys) * float64(time.Second))
	if cpu == 0 {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return measured{wall, rss, cpu}
}

func must(b *testing.B, env []string, name string, args ...string) string {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// smallClosure adds /usr/local/go and the first 50 directories of
// /usr/share/doc to the store, under one root: 52 paths.
func smallClosure(b *testing.B, env []string) (root string, paths []string) {
	b.Helper()
	if _, err := os.Stat("/usr/local/go"); err != nil {
		testenv.Missing(b, "/usr/local/go (the Go toolchain the benchmark closure is made of)", "install Go in /usr/local/go")
	}
	entries, err := os.ReadDir("/usr/share/doc")
	if err != nil {
		b.Fatal(err)
	}
	var docs []string
	for _, e := range entries {
		if e.IsDir() {
			docs = append(docs, e.Name())
		}
	}
	sort.Strings(docs)
	if len(docs) < 50 {
		b.Skipf("only %d directories in /usr/share/doc; the benchmark wants 50", len(docs))
	}
	paths = append(paths, must(b, env, "nix-store", "--add", "/usr/local/go"))
	for _, d := range docs[:50] {
		paths = append(paths, must(b, env, "nix-store", "--add", filepath.Join("/usr/share/doc", d)))
	}
	var refs strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&refs, " (builtins.storePath %q)", p)
	}
	expr := fmt.Sprintf(`let refs = [%s ]; in derivation { name = "releng-image-bench"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${toString refs} > $out"]; }`, refs.String())
	root = must(b, env, "nix-build", "--no-out-link", "-E", expr)
	return root, append(paths, root)
}

// BenchmarkImages runs, RELENG_BENCH_ROUNDS times (default 5), a cold
// build+push and a push with nothing changed, with releng and with
// umoci+skopeo, and reports the medians and their ratios.
func BenchmarkImages(b *testing.B) {
	for _, tool := range []string{"nix-store", "nix-build", "umoci", "skopeo", "go"} {
		testenv.LookPath(b, tool, "see scripts/install-deps.sh")
	}
	nix := testenv.SetupNix(b)
	env := nix.Env
	work := b.TempDir()

	// The releng binary, as users run it.
	releng := filepath.Join(work, "releng")
	cmd := exec.Command("go", "build", "-o", releng, "-ldflags", "-X main.version=bench", "./cmd/releng")
	cmd.Dir = repoRoot(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}

	root, paths := smallClosure(b, env)
	var narSize int64
	for _, p := range paths {
		var n int64
		fmt.Sscan(must(b, env, "nix-store", "-q", "--size", p), &n)
		narSize += n
	}
	// Warm the page cache for both sides.
	for _, p := range paths {
		c := exec.Command("nix-store", "--dump", p)
		c.Env = append(os.Environ(), env...)
		if err := c.Run(); err != nil { // output discarded
			b.Fatalf("nix-store --dump %s: %v", p, err)
		}
	}

	// A project whose one image is the closure, and the same with zstd
	// layers.
	proj := newProject(b, filepath.Join(work, "project"), root, "gzip")
	zproj := newProject(b, filepath.Join(work, "project-zstd"), root, "zstd")

	rounds := 5
	if s := os.Getenv("RELENG_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	type round struct {
		build, push, warm, streamed time.Duration // releng
		zbuild, zpush               time.Duration // releng, zstd layers
		insert, copy, again         time.Duration // umoci + skopeo
		relengCPU, umociCPU         time.Duration // of the cold build + push
		zstdCPU                     time.Duration // of the cold build + push, zstd layers
	}
	var relengBytes, zstdBytes, umociBytes, gzip6Bytes int64
	var rs []round
	var peakRSS int64
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		var r round
		// A fresh registry each round: nothing in its blob store.
		reg := testenv.StartRegistry(b)
		// releng, cold: empty cache, no previous build, empty repository.
		os.RemoveAll(filepath.Join(proj, "release"))
		renv := append(append([]string(nil), env...), "RELENG_CACHE_DIR="+filepath.Join(work, fmt.Sprintf("cache-%d", i)))
		dest := fmt.Sprintf("%s/releng-%d", reg.Addr, i)
		bld := runTimed(b, renv, proj, releng, "image", "build")
		psh := runTimed(b, renv, proj, releng, "image", "push", "--to", dest)
		warm := runTimed(b, renv, proj, releng, "image", "push", "--to", dest)
		// Build and push in one pass: no build, layers streamed from the store.
		senv := append(append([]string(nil), env...), "RELENG_CACHE_DIR="+filepath.Join(work, fmt.Sprintf("stream-cache-%d", i)))
		str := runTimed(b, senv, proj, releng, "image", "push", "--from-store", "--to", fmt.Sprintf("%s/streamed-%d", reg.Addr, i))
		r.build, r.push, r.warm, r.streamed = bld.wall, psh.wall, warm.wall, str.wall
		r.relengCPU = bld.cpu + psh.cpu
		peakRSS = max(peakRSS, bld.rssKB, psh.rssKB, warm.rssKB, str.rssKB)
		layout := filepath.Join(proj, "release", "images", "bench-x86_64-linux")
		relengBytes = layerBytes(b, layout)
		if i == 0 {
			gzip6Bytes = gzip6(b, layout)
		}
		// zstd layers, cold, to the same registry.
		zenv := append(append([]string(nil), env...), "RELENG_CACHE_DIR="+filepath.Join(work, fmt.Sprintf("zstd-cache-%d", i)))
		os.RemoveAll(filepath.Join(zproj, "release"))
		zb := runTimed(b, zenv, zproj, releng, "image", "build")
		zp := runTimed(b, zenv, zproj, releng, "image", "push", "--to", fmt.Sprintf("%s/zstd-%d", reg.Addr, i))
		r.zbuild, r.zpush = zb.wall, zp.wall
		r.zstdCPU = zb.cpu + zp.cpu
		peakRSS = max(peakRSS, zb.rssKB, zp.rssKB)
		zstdBytes = layerBytes(b, filepath.Join(zproj, "release", "images", "bench-x86_64-linux"))

		// umoci + skopeo, cold: a new layout, one umoci insert per path.
		layout = filepath.Join(work, fmt.Sprintf("umoci-%d", i))
		start := time.Now()
		r.umociCPU = runTimed(b, nil, work, "umoci", "init", "--layout", layout).cpu
		r.umociCPU += runTimed(b, nil, work, "umoci", "new", "--image", layout+":bench").cpu
		for _, p := range paths {
			r.umociCPU += runTimed(b, nil, work, "umoci", "insert", "--image", layout+":bench", p, p).cpu
		}
		r.insert = time.Since(start)
		sdest := fmt.Sprintf("docker://%s/umoci-%d:bench", reg.Addr, i)
		cp := runTimed(b, nil, work, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":bench", sdest)
		r.copy = cp.wall
		r.umociCPU += cp.cpu
		r.again = runTimed(b, nil, work, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":bench", sdest).wall
		umociBytes = layerBytes(b, layout)
		os.RemoveAll(layout)
		rs = append(rs, r)
	}
	b.StopTimer()

	// The medians, and the median round's parts.
	pick := func(f func(round) time.Duration) (time.Duration, round) {
		s := append([]round(nil), rs...)
		sort.Slice(s, func(i, j int) bool { return f(s[i]) < f(s[j]) })
		return f(s[len(s)/2]), s[len(s)/2]
	}
	relengCold, rc := pick(func(r round) time.Duration { return r.build + r.push })
	umociCold, uc := pick(func(r round) time.Duration { return r.insert + r.copy })
	streamed, _ := pick(func(r round) time.Duration { return r.streamed })
	zstdCold, zc := pick(func(r round) time.Duration { return r.zbuild + r.zpush })
	relengCPU, _ := pick(func(r round) time.Duration { return r.relengCPU })
	umociCPU, _ := pick(func(r round) time.Duration { return r.umociCPU })
	zstdRatio := zstdCold.Seconds() / umociCold.Seconds()
	relengWarm, _ := pick(func(r round) time.Duration { return r.warm })
	skopeoWarm, _ := pick(func(r round) time.Duration { return r.again })
	coldRatio := relengCold.Seconds() / umociCold.Seconds()
	streamRatio := streamed.Seconds() / umociCold.Seconds()
	warmRatio := relengWarm.Seconds() / skopeoWarm.Seconds()
	zstdCPU, _ := pick(func(r round) time.Duration { return r.zstdCPU })
	var perRound, zstdPerRound []string
	for _, r := range rs {
		perRound = append(perRound, fmt.Sprintf("%.2f", (r.build+r.push).Seconds()/(r.insert+r.copy).Seconds()))
		zstdPerRound = append(zstdPerRound, fmt.Sprintf("%.2f", (r.zbuild+r.zpush).Seconds()/(r.insert+r.copy).Seconds()))
	}
	b.ReportMetric(relengCold.Seconds(), "releng-cold-s")
	b.ReportMetric(umociCold.Seconds(), "umoci+skopeo-cold-s")
	b.ReportMetric(coldRatio, "cold-ratio")
	b.ReportMetric(streamRatio, "streamed-ratio")
	b.ReportMetric(relengWarm.Seconds(), "releng-unchanged-s")
	b.ReportMetric(skopeoWarm.Seconds(), "skopeo-unchanged-s")
	b.ReportMetric(warmRatio, "unchanged-ratio")
	b.ReportMetric(float64(peakRSS)/1024, "peak-rss-MB")
	b.ReportMetric(float64(relengBytes)/float64(gzip6Bytes), "gzip-bytes/gzip-6")

	verdict := func(ok bool) string {
		if ok {
			return "meets"
		}
		return "MISSES"
	}
	report := fmt.Sprintf(`Closure: %d store paths, %.1f MB of NAR (/usr/local/go and 50 /usr/share/doc directories under one root); %d rounds; medians (the parts are those of the median round).

| step | releng | umoci + skopeo | ratio | target |
|---|---|---|---|---|
| cold build + push (gzip layers) | %.2f s (image build %.2f s + image push %.2f s) | %.2f s (umoci init/new/insert ×%d %.2f s + skopeo copy %.2f s) | %.2f | ≤ 0.35 (%s) |
| cold build + push in one pass (image push --from-store) | %.2f s | same | %.2f | |
| cold build + push, zstd layers | %.2f s (image build %.2f s + image push %.2f s) | same | %.2f | |
| push, nothing changed | %.3f s | %.3f s (skopeo copy) | %.2f | ≤ 0.5 (%s) |
| CPU seconds (user+sys) of the cold build + push (not the registry's) | %.2f | %.2f | %.2f | |
| the same, zstd layers | %.2f | %.2f | %.2f | |
| peak RSS (releng) | %.0f MB | | | ≤ 200 MB (%s) |

| layer bytes | releng | reference | ratio | target |
|---|---|---|---|---|
| gzip layers vs the same tars through `+"`gzip -6 -n`"+` | %.1f MB | %.1f MB | %.3f | ≤ 1.02 (%s) |
| umoci's gzip layers vs `+"`gzip -6 -n`"+` | %.1f MB | %.1f MB | %.3f | |
| zstd layers vs `+"`gzip -6 -n`"+` | %.1f MB | %.1f MB | %.3f | |

Cold ratio per round: %s (gzip layers); %s (zstd layers).
`, len(paths), float64(narSize)/1e6, rounds,
		relengCold.Seconds(), rc.build.Seconds(), rc.push.Seconds(),
		umociCold.Seconds(), len(paths), uc.insert.Seconds(), uc.copy.Seconds(), coldRatio, verdict(coldRatio <= 0.35),
		streamed.Seconds(), streamRatio,
		zstdCold.Seconds(), zc.zbuild.Seconds(), zc.zpush.Seconds(), zstdRatio,
		relengWarm.Seconds(), skopeoWarm.Seconds(), warmRatio, verdict(warmRatio <= 0.5),
		relengCPU.Seconds(), umociCPU.Seconds(), relengCPU.Seconds()/umociCPU.Seconds(),
		zstdCPU.Seconds(), umociCPU.Seconds(), zstdCPU.Seconds()/umociCPU.Seconds(),
		float64(peakRSS)/1024, verdict(peakRSS <= 200*1024),
		float64(relengBytes)/1e6, float64(gzip6Bytes)/1e6, float64(relengBytes)/float64(gzip6Bytes), verdict(float64(relengBytes) <= 1.02*float64(gzip6Bytes)),
		float64(umociBytes)/1e6, float64(gzip6Bytes)/1e6, float64(umociBytes)/float64(gzip6Bytes),
		float64(zstdBytes)/1e6, float64(gzip6Bytes)/1e6, float64(zstdBytes)/float64(gzip6Bytes),
		strings.Join(perRound, ", "), strings.Join(zstdPerRound, ", "))
	fmt.Print(report)
	if out := os.Getenv("RELENG_BENCH_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// newProject writes a project whose one image is the closure of root,
// with layers compressed as compression says, and commits it.
func newProject(b *testing.B, dir, root, compression string) string {
	b.Helper()
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "releng.toml"), []byte(fmt.Sprintf("name = \"bench\"\n\n[[images]]\nname = \"bench\"\nsystems = [\"x86_64-linux\"]\ncontents = [%q]\ncompression = %q\n", root, compression)), 0o644)
	os.WriteFile(filepath.Join(dir, "version.json"), []byte("{\n    \"version\": \"1.0.0\",\n    \"official_release\": false,\n    \"release_name\": \"bench\"\n}\n"), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "bench"}} {
		c := exec.Command("git", args...)
		c.Dir = dir
		c.Env = append(os.Environ(), testenv.GitEnv...)
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// layerDescs are the layers of the one image of an OCI layout.
func layerDescs(b *testing.B, layout string) []oci.Descriptor {
	b.Helper()
	var idx oci.Index
	readJSON(b, filepath.Join(layout, "index.json"), &idx)
	var man oci.Manifest
	readJSON(b, filepath.Join(layout, "blobs", "sha256", oci.Hex(idx.Manifests[0].Digest)), &man)
	return man.Layers
}

func readJSON(b *testing.B, path string, v any) {
	b.Helper()
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		b.Fatalf("%s: %v", path, err)
	}
}

// layerBytes is the size of the layers of the image in an OCI layout.
func layerBytes(b *testing.B, layout string) int64 {
	var n int64
	for _, l := range layerDescs(b, layout) {
		n += l.Size
	}
	return n
}

// gzip6 is what `+"`gzip -6 -n`"+` makes of the same layer tars: each gzip
// layer of the layout decompressed and compressed again.
func gzip6(b *testing.B, layout string) int64 {
	b.Helper()
	testenv.LookPath(b, "gzip", "apt-get install -y gzip")
	var n int64
	for _, l := range layerDescs(b, layout) {
		blob := filepath.Join(layout, "blobs", "sha256", oci.Hex(l.Digest))
		dec := exec.Command("gzip", "-dc", blob)
		enc := exec.Command("gzip", "-6", "-n", "-c")
		pipe, err := dec.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		enc.Stdin = pipe
		var out countWriter
		enc.Stdout = &out
		if err := dec.Start(); err != nil {
			b.Fatal(err)
		}
		if err := enc.Run(); err != nil {
			b.Fatalf("gzip -6 of %s: %v", blob, err)
		}
		if err := dec.Wait(); err != nil {
			b.Fatalf("gzip -d of %s: %v", blob, err)
		}
		n += int64(out)
	}
	return n
}

// countWriter counts what is written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// repoRoot is the module root (two levels up from this package).
func repoRoot(b *testing.B) string {
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}
