package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/example"
	"github.com/releng-project/releng/internal/nixbuild"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/testenv"
)

// exampleRepo writes the example project into a git repo, applies edits,
// commits, tags the version and checks the tag out, as `releng tag` leaves it.
func exampleRepo(t *testing.T, edits map[string]string) (*testenv.GitRepo, *testenv.Nix) {
	t.Helper()
	nix := testenv.SetupNix(t)
	r := testenv.NewGitRepo(t)
	if _, err := example.Write(r.Dir, false); err != nil {
		t.Fatal(err)
	}
	for f, content := range edits {
		r.Write(f, content)
	}
	r.CommitAll("example")
	r.Git("tag", "-a", "-m", "release", "1.0.0")
	r.Git("checkout", "-q", "--detach", "1.0.0")
	return r, nix
}

func build(t *testing.T, r *testenv.GitRepo, nix *testenv.Nix, opts BuildOptions) (*artifacts.Record, string, error) {
	t.Helper()
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opts.NixLog = &log
	opts.Run = &runctx.Run{Events: logEvents(&log)}
	opts.NixEnv = nix.Env
	rec, err := Build(context.Background(), p, opts)
	return rec, log.String(), err
}

func TestBuildExample(t *testing.T) {
	r, nix := exampleRepo(t, nil)
	rec, log, err := build(t, r, nix, BuildOptions{})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	rel := filepath.Join(r.Dir, "release")
	vdir := filepath.Join(rel, "artifacts", "hello", "hello-1.0.0")
	for _, f := range []string{"hello-1.0.0.tar.gz", "hello-1.0.0.tar.gz.sha256", "manifest.nix", "SHA256SUMS",
		"hello-1.0.0-x86_64-linux.tar.gz", "hello-1.0.0-x86_64-linux.tar.gz.sha256", "hello-1.0.0-aarch64-linux.tar.gz"} {
		if _, err := os.Stat(filepath.Join(vdir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	// sha256sum -c accepts SHA256SUMS.
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = vdir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	// .sha256 is lowercase hex without a newline.
	sum, _ := os.ReadFile(filepath.Join(vdir, "hello-1.0.0.tar.gz.sha256"))
	if _, want, _ := artifacts.HashFile(filepath.Join(vdir, "hello-1.0.0.tar.gz")); string(sum) != want {
		t.Errorf(".sha256 = %q, want %q", sum, want)
	}
	// manifest.nix evaluates and names the real outputs.
	for _, m := range []string{filepath.Join(rel, "artifacts", "manifest.nix"), filepath.Join(vdir, "manifest.nix")} {
		out, err := nix.Command("nix-instantiate", "--eval", "--strict", "--json", m).Output()
		if err != nil {
			t.Fatalf("nix-instantiate --eval %s: %v", m, err)
		}
		var systems map[string]string
		if err := json.Unmarshal(out, &systems); err != nil || len(systems) != 2 {
			t.Fatalf("manifest %s = %s", m, out)
		}
		for sys, path := range systems {
			if path != rec.Manifest[sys] {
				t.Errorf("manifest %s: %s = %s, record says %s", m, sys, path, rec.Manifest[sys])
			}
			if _, err := os.Stat(filepath.Join(path, "bin", "hello")); err != nil {
				t.Errorf("manifest path %s is not a built output: %v", path, err)
			}
		}
	}
	// The manual is there.
	if _, err := os.Stat(filepath.Join(rel, "manual", "usage.html")); err != nil {
		t.Errorf("manual: %v", err)
	}
	// build.json lists every file with the right size and digest, and nothing else.
	loaded, err := artifacts.Load(rel)
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := loaded.Check(rel); err != nil || len(problems) > 0 {
		t.Errorf("build.json check: %v %v", problems, err)
	}
	if len(loaded.Jobs) != 3 || loaded.Jobs[0].DrvPath == "" {
		t.Errorf("jobs in build.json: %+v", loaded.Jobs)
	}
	// GC roots exist for every output.
	roots, _ := os.ReadDir(filepath.Join(rel, "gcroots"))
	if len(roots) < 4 {
		t.Errorf("gcroots: %d entries", len(roots))
	}
	// The images: an OCI layout per system, and a docker-archive in the
	// version directory that skopeo reads.
	if len(rec.Images) != 2 {
		t.Errorf("images in build.json: %+v", rec.Images)
	}
	for _, sys := range []string{"x86_64-linux", "aarch64-linux"} {
		archive := filepath.Join(vdir, "hello-1.0.0-docker-image-"+sys+".tar.gz")
		skopeo := testenv.LookPath(t, "skopeo", "apt-get install -y skopeo")
		dest := "oci:" + filepath.Join(t.TempDir(), "copy") + ":x"
		if out, err := exec.Command(skopeo, "copy", "-q", "docker-archive:"+archive, dest).CombinedOutput(); err != nil {
			t.Errorf("skopeo copy docker-archive:%s: %v\n%s", archive, err, out)
		}
		if _, err := os.Stat(filepath.Join(rel, "images", "hello-"+sys, "index.json")); err != nil {
			t.Errorf("OCI layout of %s: %v", sys, err)
		}
	}
	// A tampered file is reported.
	os.WriteFile(filepath.Join(rel, "manual", "index.html"), []byte("changed"), 0o644)
	if problems, _ := loaded.Check(rel); len(problems) != 1 || problems[0].Path != "manual/index.html" {
		t.Errorf("tampered manual: problems %v", problems)
	}

	// A second build gives byte-identical artifacts.
	first := snapshot(t, filepath.Join(rel, "artifacts"))
	if _, log, err := build(t, r, nix, BuildOptions{}); err != nil {
		t.Fatalf("second build: %v\n%s", err, log)
	}
	second := snapshot(t, filepath.Join(rel, "artifacts"))
	if len(first) != len(second) {
		t.Fatalf("second build wrote %d files, first %d", len(second), len(first))
	}
	for p, sum := range first {
		if second[p] != sum {
			t.Errorf("%s differs between two builds", p)
		}
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	files, err := artifacts.RecordTree(filepath.Dir(dir), filepath.Base(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		m[f.Path] = f.SHA256
	}
	return m
}

func TestBuildFailure(t *testing.T) {
	flake, _ := os.ReadFile("../example/project/flake.nix")
	broken := strings.Replace(string(flake), "mkdir -p $out/share/hello", "echo 'the greeting is lost' >&2; exit 3", 1)
	r, nix := exampleRepo(t, map[string]string{"flake.nix": broken})
	// A previous build's artifacts must not survive half-replaced either.
	os.MkdirAll(filepath.Join(r.Dir, "release", "state"), 0o755)
	_, log, err := build(t, r, nix, BuildOptions{})
	var be *nixbuild.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("error %T %v, want a BuildError\n%s", err, err, log)
	}
	if !strings.Contains(be.DrvPath, "hello-greeting-1.0.0.drv") || !strings.Contains(err.Error(), "the greeting is lost") {
		t.Errorf("error does not name the derivation or show its log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "release", "artifacts")); !os.IsNotExist(err) {
		t.Errorf("release/artifacts exists after a failed build: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "release", "state")); err != nil {
		t.Errorf("release/state was cleared: %v", err)
	}
}

func TestBuildBadInput(t *testing.T) {
	tests := []struct {
		name  string
		edits map[string]string
		opts  BuildOptions
		want  string
	}{
		{"jobs attribute missing", map[string]string{"releng.toml": exampleToml(`jobs = ".#release-jobz.{profile}"`)}, BuildOptions{}, "the flake has no such attribute"},
		{"jobs not an attrset", map[string]string{"releng.toml": exampleToml(`jobs = ".#release-jobs.all.build.x86_64-linux"`)}, BuildOptions{}, "a single derivation, not an attribute set"},
		{"jobs a string", map[string]string{"releng.toml": exampleToml(`jobs = ".#release-jobs.all.build.x86_64-linux.name"`)}, BuildOptions{}, "evaluates to a string"},
		{"manual path missing", map[string]string{"releng.toml": strings.Replace(exampleToml(""), "share/doc/hello/manual", "share/doc/nope", 1)}, BuildOptions{}, "share/doc/nope does not exist"},
		{"profile not listed", nil, BuildOptions{Profile: "fast"}, `profile "fast" is not listed`},
		{"job without out", map[string]string{"flake.nix": strings.Replace(exampleFlake(t), `inherit tarballs;`, `inherit tarballs; odd = (shell "odd" "mkdir $bin" { outputs = [ "bin" ]; });`, 1)}, BuildOptions{}, `has no "out" output`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, nix := exampleRepo(t, tt.edits)
			_, log, err := build(t, r, nix, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q\n%s", err, tt.want, log)
			}
		})
	}
}

func exampleFlake(t *testing.T) string {
	b, err := os.ReadFile("../example/project/flake.nix")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exampleToml(buildLine string) string {
	b, _ := os.ReadFile("../example/project/releng.toml")
	return strings.Replace(string(b), "[build]\n", "[build]\n"+buildLine+"\n", 1)
}

// TestEvaluatorNixEvalJobs puts a fake nix-eval-jobs on PATH that records
// its argv and answers like the real one, and checks releng uses it.
func TestEvaluatorNixEvalJobs(t *testing.T) {
	r, nix := exampleRepo(t, nil)
	bin := t.TempDir()
	argvFile := filepath.Join(t.TempDir(), "argv")
	// The fake answers with the real derivations, taken from nix eval.
	n := &nixbuild.Nix{Dir: r.Dir, Env: nix.Env}
	jobs, err := n.Evaluate(context.Background(), ".#release-jobs.all", "nix", 1)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, j := range jobs {
		b, _ := json.Marshal(map[string]any{"attr": j.Attr, "attrPath": strings.Split(j.Attr, "."), "drvPath": j.DrvPath, "name": j.Name, "system": j.System, "outputs": j.Outputs})
		lines = append(lines, string(b))
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argvFile + "\ncat <<'EOF'\n" + strings.Join(lines, "\n") + "\nEOF\n"
	os.WriteFile(filepath.Join(bin, "nix-eval-jobs"), []byte(script), 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	rec, log, err := build(t, r, nix, BuildOptions{})
	if err != nil {
		t.Fatalf("build with nix-eval-jobs: %v\n%s", err, log)
	}
	argv, _ := os.ReadFile(argvFile)
	if got := strings.Fields(string(argv)); len(got) < 2 || got[0] != "--flake" || got[1] != ".#release-jobs.all" {
		t.Errorf("nix-eval-jobs argv = %q", argv)
	}
	if len(rec.Jobs) != len(jobs) {
		t.Errorf("jobs from nix-eval-jobs: %d, from nix eval: %d", len(rec.Jobs), len(jobs))
	}
}

func TestBuildTargetManual(t *testing.T) {
	r, nix := exampleRepo(t, nil)
	rec, log, err := build(t, r, nix, BuildOptions{Target: "manual"})
	if err != nil {
		t.Fatalf("build --target manual: %v\n%s", err, log)
	}
	rel := filepath.Join(r.Dir, "release")
	if _, err := os.Stat(filepath.Join(rel, "artifacts")); !os.IsNotExist(err) {
		t.Errorf("--target manual wrote artifacts: %v", err)
	}
	if len(rec.Jobs) != 1 || rec.Jobs[0].Attr != "build.x86_64-linux" || rec.Target != "manual" {
		t.Errorf("record: target %s, jobs %+v", rec.Target, rec.Jobs)
	}
	if len(rec.Files) != 2 || !strings.HasPrefix(rec.Files[0].Path, "manual/") {
		t.Errorf("files: %+v", rec.Files)
	}
	if strings.Contains(log, "--add-root") {
		t.Errorf("log carries Nix's --add-root warning:\n%s", log)
	}
}

func TestBuildRefusesOffTag(t *testing.T) {
	r, nix := exampleRepo(t, nil)
	r.Git("checkout", "-q", "main")
	r.Write("extra.txt", "x")
	r.CommitAll("after the tag")
	_, _, err := build(t, r, nix, BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "is not on tag 1.0.0") {
		t.Errorf("build off the tag: %v", err)
	}
	r.Git("checkout", "-q", "1.0.0")
	r.Write("version.json", strings.Replace(mustRead(t, filepath.Join(r.Dir, "version.json")), "First Light", "Changed", 1))
	_, _, err = build(t, r, nix, BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "changes to tracked files") {
		t.Errorf("build with a dirty tree: %v", err)
	}
	if _, _, err := build(t, r, nix, BuildOptions{NoCheckGit: true}); err != nil {
		t.Errorf("--no-check-git: %v", err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
