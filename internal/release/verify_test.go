package release

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/project"
)

// TestVerifyWholeCache: verify reads back everything the cache stage pushed
// — the closures of every job's derivation and outputs, not only the
// manifest's closure — and the `.ls` listings of a cache that writes them.
// A tampered listing and a tampered narinfo of a path outside the
// manifest's closure each fail, named.
func TestVerifyWholeCache(t *testing.T) {
	cache, keyDir := t.TempDir(), t.TempDir()
	env := fmt.Sprintf(`[environments.listed]
colour = "green"
cache = "file://%s?compression=zstd&write-nar-listing=true"
signing_key = "%s/listed.key"

[build]`, cache, keyDir)
	r, nix := exampleRepo(t, map[string]string{"releng.toml": strings.Replace(exampleToml(""), "[build]", env, 1)})
	genKey(t, filepath.Join(keyDir, "listed.key"))
	if _, log, err := build(t, r, nix, BuildOptions{}); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if rep, log, err := runUpload(t, r, nix, UploadOptions{Environment: "listed", NoConfirm: true}); err != nil || step(rep, "cache").Sent == 0 {
		t.Fatalf("upload: %v\n%s", err, log)
	}
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := artifacts.Load(p.ReleaseDir())
	if err != nil {
		t.Fatal(err)
	}

	// (c) Untampered: verify passes, with one row per path pushed, each
	// with the listing it checked.
	rep := verify(t, r, "listed")
	if f := failures(rep); len(f) > 0 {
		t.Fatalf("verify of an untampered cache: %v", f)
	}
	rows := map[string]bool{}
	for _, c := range rep.Checks {
		if c.What == "cache" {
			rows[c.Object] = true
		}
	}
	drvs, outputs := CacheRoots(p.Config, rec)
	for _, path := range append(drvs, outputs...) {
		if !rows[path] {
			t.Errorf("verify has no row for %s, which the cache stage pushed", path)
		}
	}
	listings, _ := filepath.Glob(filepath.Join(cache, "*.ls"))
	if len(listings) != len(rows) {
		t.Errorf("%d listings in the cache, %d paths verified", len(listings), len(rows))
	}

	// Two paths outside the manifest's closure: a build job's doc output
	// and its derivation.
	var manifest []string
	for _, path := range rec.Manifest {
		manifest = append(manifest, path)
	}
	out, err := nix.Command("nix-store", append([]string{"-qR"}, manifest...)...).Output()
	if err != nil {
		t.Fatalf("closure of the manifest: %v", err)
	}
	var doc, drv string
	for _, j := range rec.Jobs {
		switch j.Attr {
		case "tarballs":
			// Excluded by cache_exclude_jobs: not pushed, not verified.
			if rows[j.Outputs["out"]] {
				t.Errorf("verify checked %s, of an excluded job", j.Outputs["out"])
			}
		case "build.x86_64-linux":
			doc, drv = j.Outputs["doc"], j.DrvPath
		}
	}
	for _, path := range []string{doc, drv} {
		if path == "" || strings.Contains(string(out), path) {
			t.Fatalf("%q: want a path outside the manifest's closure:\n%s", path, out)
		}
	}
	lsFile := filepath.Join(cache, hashPart(doc)+".ls")
	narinfoFile := filepath.Join(cache, hashPart(drv)+".narinfo")
	lsGood, niGood := readFile(t, lsFile), readFile(t, narinfoFile)

	// (a) One byte of a listing changed.
	lsBad := bytes.Clone(lsGood)
	lsBad[len(lsBad)/2] ^= 1
	writeFile(t, lsFile, lsBad)
	f := failures(verify(t, r, "listed"))
	if len(f) != 1 || !strings.HasPrefix(f[0], doc+": ") || !strings.Contains(f[0], "file://"+lsFile+" differs from the listing of its NAR") {
		t.Errorf("verify with a tampered listing: %v", f)
	}
	writeFile(t, lsFile, lsGood)

	// (b) The NarHash of a derivation's narinfo replaced by another path's.
	other := readFile(t, filepath.Join(cache, hashPart(doc)+".narinfo"))
	niBad := []byte(strings.Replace(string(niGood), field(t, niGood, "NarHash"), field(t, other, "NarHash"), 1))
	writeFile(t, narinfoFile, niBad)
	f = failures(verify(t, r, "listed"))
	if len(f) != 1 || !strings.HasPrefix(f[0], drv+": ") || !strings.Contains(f[0], "file://"+narinfoFile+": no valid signature") || !strings.Contains(f[0], "the narinfo says") {
		t.Errorf("verify with a tampered narinfo: %v", f)
	}

	// Both at once: each is named.
	writeFile(t, lsFile, lsBad)
	f = failures(verify(t, r, "listed"))
	if all := strings.Join(f, "\n"); len(f) != 2 || !strings.Contains(all, hashPart(doc)+".ls") || !strings.Contains(all, hashPart(drv)+".narinfo") {
		t.Errorf("verify with a tampered listing and narinfo: %v", f)
	}

	writeFile(t, lsFile, lsGood)
	writeFile(t, narinfoFile, niGood)
	if f := failures(verify(t, r, "listed")); len(f) > 0 {
		t.Errorf("verify after restoring: %v", f)
	}
}

func hashPart(path string) string { return filepath.Base(path)[:32] }

// field is the "Key: value" line of a narinfo.
func field(t *testing.T, narinfo []byte, key string) string {
	t.Helper()
	for _, line := range strings.Split(string(narinfo), "\n") {
		if strings.HasPrefix(line, key+": ") {
			return line
		}
	}
	t.Fatalf("no %s in %s", key, narinfo)
	return ""
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
