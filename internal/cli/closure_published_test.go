package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/closure"
	"github.com/releng-project/releng/internal/example"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

// publishedToml adds to the example's releng.toml (without its image) an
// S3 environment staging (the default, through proxy), an environment
// without a cache, and the growth check.
func publishedToml(base, proxy, key, growth string) string {
	toml, _, _ := strings.Cut(base, "# A container image")
	env := fmt.Sprintf(`default_environment = "staging"

[checks]
max_closure_growth = %q

[environments.staging]
releases = "s3://rel"
cache = "s3://cache?endpoint=%[2]s&scheme=http&region=us-east-1&compression=zstd&narinfo-compression=zstd"
s3_endpoint = "http://%[2]s"
s3_region = "us-east-1"
signing_key = %[3]s

[environments.nocache]
releases = "s3://rel"
s3_endpoint = "http://%[2]s"
s3_region = "us-east-1"

[notes]`, growth, proxy, tomlString(key))
	return strings.Replace(toml, "[notes]", env, 1)
}

// The example, published twice to MinIO: 1.1.0 bumps hello's version and
// adds a dependency (hello-extra 0.3); the greeting keeps its name. The
// growth check of build, then closure diff and why of the published
// versions with no nix on PATH, each narinfo read once.
func TestClosurePublished(t *testing.T) {
	nix := testenv.SetupNix(t)
	for _, kv := range nix.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "rel", false)
	m.MakeBucket(t, "cache", true)
	for _, kv := range m.AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	proxy := testenv.StartFaultProxy(t, m.Endpoint, 1)
	key := filepath.Join(t.TempDir(), "signing.key")
	if _, err := nixstore.GenerateKeyFile("closure-1", key); err != nil {
		t.Fatal(err)
	}
	r := testenv.NewGitRepo(t)
	if _, err := example.Write(r.Dir, false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(r.Dir, "releng.toml"))
	base := string(b)
	flake, _ := os.ReadFile(filepath.Join(r.Dir, "flake.nix"))
	r.Write("flake.nix", strings.Replace(string(flake), `"hello-greeting-${version}"`, `"hello-greeting"`, 1))
	r.Write("releng.toml", publishedToml(base, proxy.Addr, key, "10%"))
	r.CommitAll("example")
	r.Git("tag", "-a", "-m", "release", "1.0.0")
	r.Git("checkout", "-q", "--detach", "1.0.0")
	releng := func(args ...string) (string, string, int) { return run(t, append([]string{"-C", r.Dir}, args...)...) }

	// A first release: the check says so, and fails only with --strict.
	_, errOut, code := releng("build", "--strict")
	if code != 1 || !strings.Contains(errOut, "checks.max_closure_growth cannot be checked (--strict): no release before 1.0.0 is published to the default environment staging (a first release)") {
		t.Fatalf("build --strict of a first release: exit %d\n%s", code, errOut)
	}
	_, errOut, code = releng("build")
	if code != 0 || !strings.Contains(errOut, "checks.max_closure_growth not checked: no release before 1.0.0") {
		t.Fatalf("build of a first release: exit %d\n%s", code, errOut)
	}
	oldRec, err := artifacts.Load(filepath.Join(r.Dir, "release"))
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := releng("upload", "--environment", "staging", "--noconfirm"); code != 0 {
		t.Fatalf("upload 1.0.0: exit %d\n%s", code, errOut)
	}

	// 1.1.0: hello 1.0.0 → 1.1.0 refers to a new hello-extra-0.3.
	r.Git("checkout", "-q", "main")
	flake, _ = os.ReadFile(filepath.Join(r.Dir, "flake.nix"))
	f := strings.Replace(string(flake), "      hello = system:", `      extra = shell "hello-extra-0.3" ''
        mkdir -p $out; seq 1 20000 > $out/data
      '' { };

      hello = system:`, 1)
	f = strings.Replace(f, "chmod 755 $out/bin/hello\n", "chmod 755 $out/bin/hello\n        mkdir -p $out/share; echo ${extra} > $out/share/extra-path\n", 1)
	r.Write("flake.nix", f)
	r.Write("version.json", "{\n    \"version\": \"1.1.0\",\n    \"official_release\": false,\n    \"release_name\": \"Second Light\"\n}\n")
	r.CommitAll("1.1.0")
	r.Git("tag", "-a", "-m", "release", "1.1.0")
	r.Git("checkout", "-q", "--detach", "1.1.0")
	_, errOut, code = releng("build")
	if code != 1 || !strings.Contains(errOut, "against 1.0.0@staging, more than checks.max_closure_growth = \"10%\" allows") ||
		!strings.Contains(errOut, "hello-extra  added     ∅ → 0.3") || !strings.Contains(errOut, "hello        upgraded  1.0.0 → 1.1.0") {
		t.Fatalf("build that grew too much: exit %d\n%s", code, errOut)
	}
	r.Write("releng.toml", publishedToml(base, proxy.Addr, key, "1MB"))
	_, errOut, code = releng("build", "--no-check-git")
	if code != 0 || !strings.Contains(errOut, "against 1.0.0@staging, within checks.max_closure_growth = \"1MB\"") {
		t.Fatalf("build within the limit: exit %d\n%s", code, errOut)
	}
	newRec, err := artifacts.Load(filepath.Join(r.Dir, "release"))
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := releng("upload", "--environment", "staging", "--noconfirm", "--no-check-git"); code != 0 {
		t.Fatalf("upload 1.1.0: exit %d\n%s", code, errOut)
	}

	// What Nix says of the two closures (before nix leaves PATH).
	manifestPaths := func(rec *artifacts.Record) []string {
		var ps []string
		for _, p := range rec.Manifest {
			ps = append(ps, p)
		}
		return ps
	}
	oldSizes := nixClosureSizes(t, nix, true, manifestPaths(oldRec)...)
	newSizes := nixClosureSizes(t, nix, true, manifestPaths(newRec)...)
	bySize := func(sizes map[string]nixSizes, pkg string) (n uint64) {
		for p, s := range sizes {
			if strings.HasPrefix(filepath.Base(p)[33:], pkg) {
				n += s.narSize
			}
		}
		return n
	}
	var oldTotal, newTotal uint64
	distinct := map[string]bool{}
	for p, s := range oldSizes {
		oldTotal += s.narSize
		distinct[filepath.Base(p)[:32]] = true
	}
	for p, s := range newSizes {
		newTotal += s.narSize
		distinct[filepath.Base(p)[:32]] = true
	}

	root := newRec.Manifest["x86_64-linux"]
	rootClosure := nixClosureSizes(t, nix, false, root)[root].closureSize

	// No nix from here on: PATH has git only.
	bin := t.TempDir()
	gitPath, _ := exec.LookPath("git")
	os.Symlink(gitPath, filepath.Join(bin, "git"))
	t.Setenv("PATH", bin)
	if _, err := exec.LookPath("nix"); err == nil {
		t.Fatal("nix is still on PATH")
	}
	proxy.Reset()
	out, errOut, code := releng("--json", "closure", "diff", "1.0.0@staging", "1.1.0@staging")
	var d closure.Diff
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil {
		t.Fatalf("closure diff of published versions: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	var got []string
	for _, c := range d.Changes {
		got = append(got, fmt.Sprintf("%s %s %v→%v %+d", c.Package, c.Kind, c.OldVersions, c.NewVersions, c.Delta))
	}
	want := []string{
		fmt.Sprintf("hello upgraded [1.0.0]→[1.1.0] %+d", int64(bySize(newSizes, "hello-1.1.0"))-int64(bySize(oldSizes, "hello-1.0.0"))),
		fmt.Sprintf("hello-extra added []→[0.3] %+d", bySize(newSizes, "hello-extra-0.3")),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || d.Unchanged != 1 {
		t.Errorf("changes (unchanged %d):\n%s\nwant:\n%s", d.Unchanged, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d.Old.Path != "1.0.0@staging" || len(d.Old.Roots) != 2 || d.Old.ClosureSize != oldTotal || d.New.ClosureSize != newTotal ||
		d.Delta != int64(newTotal)-int64(oldTotal) || d.Old.Paths != len(oldSizes) || d.New.Paths != len(newSizes) {
		t.Errorf("diff totals: %+v %+v delta %d; nix path-info: %d → %d bytes, %d → %d paths", d.Old, d.New, d.Delta, oldTotal, newTotal, len(oldSizes), len(newSizes))
	}
	// Each narinfo of the two closures is read once — one request, a GET
	// (zstd-compressed, recognised by its magic) — shared ones too.
	gets := map[string]int{}
	for _, req := range proxy.Requests() {
		if strings.HasSuffix(req.Path, ".narinfo") {
			if req.Method == "GET" {
				gets[strings.TrimSuffix(filepath.Base(req.Path), ".narinfo")]++
			} else {
				t.Errorf("request %s: want a GET per narinfo and nothing else", req)
			}
		}
	}
	for h := range distinct {
		if gets[h] != 1 {
			t.Errorf("narinfo %s read %d times", h, gets[h])
		}
	}
	if len(gets) != len(distinct) {
		t.Errorf("%d narinfos read, the two closures have %d paths", len(gets), len(distinct))
	}
	// The table.
	out, _, code = releng("closure", "diff", "1.0.0@staging", "1.1.0@staging")
	if code != 0 || !strings.Contains(out, "old:  1.0.0@staging  3 paths") || !strings.Contains(out, "hello-extra  added     ∅ → 0.3") {
		t.Errorf("closure diff table: exit %d\n%s", code, out)
	}

	// why, from the environment and from the cache over http://.
	for _, from := range []string{"staging", "http://" + m.Endpoint + "/cache"} {
		out, errOut, code = releng("--json", "closure", "why", "--from", from, root, "hello-extra")
		var w closure.Why
		if err := json.Unmarshal([]byte(out), &w); code != 0 || err != nil || len(w.Chain) != 2 || w.Chain[0].Path != root ||
			!strings.HasSuffix(w.Chain[1].Path, "-hello-extra-0.3") || w.Chain[1].NarSize != bySize(newSizes, "hello-extra-0.3") ||
			w.Chain[0].ClosureSize != rootClosure {
			t.Errorf("closure why --from %s: exit %d, %v\n%s%s", from, code, err, out, errOut)
		}
	}

	// Bad input, as a new user would give it.
	missing := "/nix/store/00000000000000000000000000000000-hello-9.9"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"closure", "diff", "1.2.0@staging", "1.1.0@staging"}, 1, "version 1.2.0 is not published to environment staging: s3://rel/hello/hello-1.2.0/manifest.nix does not exist (published: 1.0.0, 1.1.0)"},
		{[]string{"closure", "diff", "1.0.0@production", "1.1.0@staging"}, 2, `no environment "production"; configured: local, nocache, staging`},
		{[]string{"closure", "diff", "1.0.0@nocache", "1.1.0@staging"}, 2, "environment nocache has no cache (environments.nocache.cache)"},
		{[]string{"closure", "diff", "latest@staging", "1.1.0@staging"}, 2, `"latest@staging" is neither a store path nor VERSION@ENV`},
		{[]string{"closure", "why", "--from", "nocache", root, "hello-extra"}, 2, "environment nocache has no cache"},
		{[]string{"closure", "why", "--from", "staging", root, "perl"}, 1, "perl is not in the closure of " + root + " (3 paths)"},
		{[]string{"closure", "why", "--from", "staging", missing, "perl"}, 1, "has no narinfo for " + missing + " (given as PATH)"},
		{[]string{"closure", "why", "--from", "ftp://x", root, "perl"}, 2, "ftp://x"},
	} {
		out, errOut, code := releng(tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.args, code, tc.code, out, errOut, tc.want)
		}
	}
	// A growth limit that is neither a percentage nor a size.
	r.Write("releng.toml", publishedToml(base, proxy.Addr, key, "10 percent"))
	_, errOut, code = releng("build", "--no-check-git")
	if code != 2 || !strings.Contains(errOut, `checks.max_closure_growth: "10 percent" is neither a percentage ("10%") nor a size`) {
		t.Errorf("bad max_closure_growth: exit %d\n%s", code, errOut)
	}
}
