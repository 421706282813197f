package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/releng-project/releng/internal/fsutil"
)

// sandbox is a temp directory holding a project (proj/, with .git,
// releng.toml and src/) beside other files, and links to lead out of it.
type sandbox struct {
	dir, root string
}

func newSandbox(t testing.TB) *sandbox {
	dir := t.TempDir()
	sb := &sandbox{dir: dir, root: filepath.Join(dir, "proj")}
	for _, f := range []string{"proj/.git/HEAD", "proj/src/SENTINEL", "proj/releng.toml", "outside/SENTINEL", "SENTINEL"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("sentinel "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"proj/up": "..", "proj/out": filepath.Join(dir, "outside"), "proj/self": ".", "proj/srclink": "src"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return sb
}

func (sb *sandbox) parse(t testing.TB, doc map[string]any) (*Config, error) {
	data, err := toml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data, filepath.Join(sb.root, FileName), sb.root)
}

func TestConfiguredPaths(t *testing.T) {
	sb := newSandbox(t)
	cases := []struct {
		key, value string
		wantErr    string // "" when accepted
	}{
		{"release_dir", "release", ""},
		{"release_dir", "build/out", ""},
		{"release_dir", "srclink/rel", ""},
		{"release_dir", ".", "is the project root itself"},
		{"release_dir", "self", "is the project root itself"},
		{"release_dir", "..", "is outside the project root"},
		{"release_dir", "../outside", "is outside the project root"},
		{"release_dir", "up", "through a symbolic link it leads to"},
		{"release_dir", "out/rel", "through a symbolic link it leads to"},
		{"release_dir", "/", "is outside the project root"},
		{"release_dir", ".git", "inside the repository's .git"},
		{"release_dir", "sub/../.git/x", "inside the repository's .git"},
		{"version_file", "../version.json", "is outside the project root"},
		{"version_file", "/etc/passwd", "is outside the project root"},
		{"notes.fragments_dir", ".", "is the project root itself"},
		{"notes.fragments_dir", "out", "through a symbolic link"},
		{"notes.output", "../rl-{major}.md", "is outside the project root"},
		{"notes.summary", "up/SUMMARY.md", "through a symbolic link"},
		{"notes.authors", "/tmp/authors.yml", "is outside the project root"},
		{"environments.e.releases", filepath.Join(sb.dir, "outside", "releases"), ""},
		{"environments.e.releases", "../sibling", ""},
		{"environments.e.releases", "/", "holds the project (or is /)"},
		{"environments.e.releases", sb.dir, "holds the project (or is /)"},
		{"environments.e.docs", "file://" + sb.dir, "holds the project (or is /)"},
		{"environments.e.docs", "..", "holds the project (or is /)"},
		{"environments.e.docs", ".", "is the project root itself"},
		{"environments.e.docs", "s3://bucket/..", ""},
		{"environments.e.cache", "file:///?compression=zstd", "holds the project (or is /)"},
		{"environments.e.cache", ".git/cache", "inside the repository's .git"},
		{"environments.e.git_remote", "../releng-target", ""},
		{"environments.e.git_remote", "/", "holds the project (or is /)"},
		{"environments.e.git_remote", "ssh://git@host/x", ""},
		{"environments.e.git_remote", "git@host:x", ""},
	}
	for _, c := range cases {
		doc := map[string]any{"name": "p"}
		parts := strings.Split(c.key, ".")
		m := doc
		for _, k := range parts[:len(parts)-1] {
			sub, ok := m[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[k] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = c.value
		_, err := sb.parse(t, doc)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s = %q: %v", c.key, c.value, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s = %q: got %v, want an error with %q", c.key, c.value, err, c.wantErr)
		case c.wantErr != "":
			var ce *Error
			if !errors.As(err, &ce) || ce.Line == 0 || !strings.Contains(err.Error(), c.key) {
				t.Errorf("%s = %q: error without key or line: %v", c.key, c.value, err)
			}
		}
	}
	// A --config file inside the release directory.
	data, _ := toml.Marshal(map[string]any{"name": "p", "release_dir": "conf"})
	if _, err := Parse(data, filepath.Join(sb.root, "conf", "releng.toml"), sb.root); err == nil || !strings.Contains(err.Error(), "holds the configuration file") {
		t.Errorf("release_dir holding the config: %v", err)
	}
}

// snapshotTree records every file and link under dir with its content or
// target.
func snapshotTree(t testing.TB, dir string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[p] = "-> " + target
		case d.Type().IsRegular():
			data, _ := os.ReadFile(p)
			out[p] = string(data)
		case d.IsDir():
			out[p] = "dir"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzConfigPaths: whatever paths releng.toml gives, a configuration that
// loads never lets the release directory's clearing, nor its writes, touch
// anything outside the release directory inside the project. Nothing
// outside the sandbox is ever touched: a release directory that resolves
// outside it fails the test before anything is deleted.
func FuzzConfigPaths(f *testing.F) {
	for _, seed := range [][4]string{
		{"release", "doc/manual/rl-next", "version.json", "../out"},
		{".", "..", "/", "/"},
		{"..", "src", "up/x", "file:///"},
		{"up", "out", "self/version.json", "."},
		{"srclink", ".git", "src/../../x", "file://localhost/tmp"},
		{"a/../../proj/src", "./", "release/../version.json", "s3://b"},
		{"out/x", "self/self/src", "proj", "oci:../../x"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, releaseDir, fragments, versionFile, dest string) {
		for _, s := range []string{releaseDir, fragments, versionFile, dest} {
			if strings.ContainsRune(s, 0) || len(s) > 200 {
				return
			}
		}
		sb := newSandbox(t)
		before := snapshotTree(t, sb.dir)
		doc := map[string]any{"name": "p", "release_dir": releaseDir, "version_file": versionFile,
			"notes":        map[string]any{"fragments_dir": fragments},
			"environments": map[string]any{"e": map[string]any{"releases": dest, "docs": dest, "cache": dest, "git_remote": dest}}}
		cfg, err := sb.parse(t, doc)
		if err != nil {
			return
		}
		rel := fsutil.Resolve(cfg.Abs(cfg.ReleaseDir))
		realRoot := fsutil.Resolve(sb.root)
		if !fsutil.Within(realRoot, rel) || rel == realRoot || fsutil.Within(filepath.Join(realRoot, ".git"), rel) {
			t.Fatalf("release_dir %q was accepted but resolves to %s, outside the project %s", releaseDir, rel, realRoot)
		}
		// What build does to the release directory: check, clear, write.
		if err := os.MkdirAll(rel, 0o755); err != nil {
			return // e.g. a file is in the way
		}
		ledger, err := fsutil.LoadLedger(rel, filepath.Join(rel, "state", "outputs.json"))
		if err != nil {
			t.Fatal(err)
		}
		clearErr := ledger.Clear("state", LocalDir)
		out := filepath.Join(rel, "artifacts", "x")
		if err := ledger.Record(map[string]fsutil.Kind{out: fsutil.KindFile}); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
			_ = os.WriteFile(out, []byte("x"), 0o644)
		}
		if err := ledger.Clear("state", LocalDir); err != nil && clearErr == nil {
			t.Fatalf("second clear: %v", err)
		}
		after := snapshotTree(t, sb.dir)
		for p, was := range before {
			if fsutil.Within(rel, p) {
				continue
			}
			if now, ok := after[p]; !ok || now != was {
				t.Fatalf("release_dir %q (%s): %s changed or vanished", releaseDir, rel, p)
			}
		}
		for p := range after {
			if _, ok := before[p]; !ok && !fsutil.Within(rel, p) && !bytes.HasPrefix([]byte(rel), []byte(p)) {
				t.Fatalf("release_dir %q (%s): %s appeared outside the release directory", releaseDir, rel, p)
			}
		}
	})
}
