// Package images benchmarks `releng image build` + `releng image push`
// against what a user would do without releng — `umoci insert` of each
// store path into an OCI layout, then `skopeo copy` to the registry — side
// by side, on the same closure and the same local registry (SPEC §12).
//
// Run it with bench/images/run.sh, which writes RESULTS.md.
package images

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/testenv"
)

// measured is one timed command.
type measured struct {
	wall  time.Duration
	rssKB int64
}

// runTimed runs a command and returns its wall time and peak RSS. The
// RSS comes from GNU time when it is installed: the rusage of a child of
// this (large) test process would start at this process's own RSS.
func runTimed(b *testing.B, env []string, dir, name string, args ...string) measured {
	b.Helper()
	rssFile := filepath.Join(b.TempDir(), "rss")
	argv := append([]string{name}, args...)
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		argv = append([]string{"/usr/bin/time", "-f", "%M", "-o", rssFile}, argv...)
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
	if data, err := os.ReadFile(rssFile); err == nil {
		fmt.Sscan(string(data), &rss)
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return measured{wall, rss}
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

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
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

	// A project whose one image is the closure.
	proj := filepath.Join(work, "project")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "releng.toml"), []byte(fmt.Sprintf("name = \"bench\"\n\n[[images]]\nname = \"bench\"\nsystems = [\"x86_64-linux\"]\ncontents = [%q]\n", root)), 0o644)
	os.WriteFile(filepath.Join(proj, "version.json"), []byte("{\n    \"version\": \"1.0.0\",\n    \"official_release\": false,\n    \"release_name\": \"bench\"\n}\n"), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "bench"}} {
		c := exec.Command("git", args...)
		c.Dir = proj
		c.Env = append(os.Environ(), testenv.GitEnv...)
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}

	rounds := 5
	if s := os.Getenv("RELENG_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	var relengCold, relengBuild, relengPush, relengWarm, umociCold, umociInsert, skopeoCold, skopeoWarm []time.Duration
	var peakRSS int64
	b.ResetTimer()
	for round := 0; round < rounds; round++ {
		// A fresh registry each round: nothing in its blob store.
		reg := testenv.StartRegistry(b)
		// releng, cold: empty cache, no previous build, empty repository.
		cache := filepath.Join(work, fmt.Sprintf("cache-%d", round))
		os.RemoveAll(filepath.Join(proj, "release"))
		renv := append(append([]string(nil), env...), "RELENG_CACHE_DIR="+cache)
		dest := fmt.Sprintf("%s/releng-%d", reg.Addr, round)
		bld := runTimed(b, renv, proj, releng, "image", "build")
		psh := runTimed(b, renv, proj, releng, "image", "push", "--to", dest)
		warm := runTimed(b, renv, proj, releng, "image", "push", "--to", dest)
		relengBuild = append(relengBuild, bld.wall)
		relengPush = append(relengPush, psh.wall)
		relengCold = append(relengCold, bld.wall+psh.wall)
		relengWarm = append(relengWarm, warm.wall)
		peakRSS = max(peakRSS, bld.rssKB, psh.rssKB, warm.rssKB)

		// umoci + skopeo, cold: a new layout, one umoci insert per path.
		layout := filepath.Join(work, fmt.Sprintf("umoci-%d", round))
		start := time.Now()
		runTimed(b, nil, work, "umoci", "init", "--layout", layout)
		runTimed(b, nil, work, "umoci", "new", "--image", layout+":bench")
		for _, p := range paths {
			runTimed(b, nil, work, "umoci", "insert", "--image", layout+":bench", p, p)
		}
		ins := time.Since(start)
		sdest := fmt.Sprintf("docker://%s/umoci-%d:bench", reg.Addr, round)
		cp := runTimed(b, nil, work, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":bench", sdest)
		again := runTimed(b, nil, work, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":bench", sdest)
		umociInsert = append(umociInsert, ins)
		skopeoCold = append(skopeoCold, cp.wall)
		umociCold = append(umociCold, ins+cp.wall)
		skopeoWarm = append(skopeoWarm, again.wall)
		os.RemoveAll(layout)
	}
	b.StopTimer()

	coldRatio := median(relengCold).Seconds() / median(umociCold).Seconds()
	warmRatio := median(relengWarm).Seconds() / median(skopeoWarm).Seconds()
	b.ReportMetric(median(relengCold).Seconds(), "releng-cold-s")
	b.ReportMetric(median(umociCold).Seconds(), "umoci+skopeo-cold-s")
	b.ReportMetric(coldRatio, "cold-ratio")
	b.ReportMetric(median(relengWarm).Seconds(), "releng-unchanged-s")
	b.ReportMetric(median(skopeoWarm).Seconds(), "skopeo-unchanged-s")
	b.ReportMetric(warmRatio, "unchanged-ratio")
	b.ReportMetric(float64(peakRSS)/1024, "peak-rss-MB")

	verdict := func(ok bool) string {
		if ok {
			return "meets"
		}
		return "MISSES"
	}
	report := fmt.Sprintf(`Closure: %d store paths, %.1f MB of NAR (/usr/local/go and 50 /usr/share/doc directories under one root); %d rounds, medians.

| step | releng | umoci + skopeo | ratio | target |
|---|---|---|---|---|
| cold build + push | %.2f s (build %.2f s + push %.2f s) | %.2f s (umoci insert ×%d %.2f s + skopeo copy %.2f s) | %.2f | ≤ 0.5 (%s) |
| push, nothing changed | %.3f s | %.3f s (skopeo copy) | %.2f | ≤ 0.5 (%s) |
| peak RSS (releng) | %.0f MB | | | ≤ 200 MB (%s) |
`, len(paths), float64(narSize)/1e6, rounds,
		median(relengCold).Seconds(), median(relengBuild).Seconds(), median(relengPush).Seconds(),
		median(umociCold).Seconds(), len(paths), median(umociInsert).Seconds(), median(skopeoCold).Seconds(), coldRatio, verdict(coldRatio <= 0.5),
		median(relengWarm).Seconds(), median(skopeoWarm).Seconds(), warmRatio, verdict(warmRatio <= 0.5),
		float64(peakRSS)/1024, verdict(peakRSS <= 200*1024))
	fmt.Print(report)
	if out := os.Getenv("RELENG_BENCH_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// repoRoot is the module root (two levels up from this package).
func repoRoot(b *testing.B) string {
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}
