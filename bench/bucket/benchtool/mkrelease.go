package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/nixbuild"
)

const (
	name    = "bench"
	version = "1.0.0"
	major   = "1.0"
)

// versionFiles are the 20 files of the version directory (besides what
// build adds: manifest.nix, FILE.sha256, SHA256SUMS): random, incompressible
// bytes, 999.9 MB in all — three 200 MB tarballs down to a 4 kB script.
var versionFiles = []struct {
	name string
	size int64
}{
	{"bench-1.0.0-x86_64-linux.tar.xz", 200e6},
	{"bench-1.0.0-aarch64-linux.tar.xz", 200e6},
	{"bench-1.0.0-docker-image-x86_64-linux.tar.gz", 200e6},
	{"bench-1.0.0-docker-image-aarch64-linux.tar.gz", 100e6},
	{"bench-1.0.0-riscv64-linux.tar.xz", 100e6},
	{"bench-1.0.0-x86_64-darwin.tar.xz", 50e6},
	{"bench-1.0.0-aarch64-darwin.tar.xz", 50e6},
	{"bench-1.0.0-armv7l-linux.tar.xz", 50e6},
	{"bench-1.0.0-i686-linux.tar.xz", 20e6},
	{"bench-1.0.0-x86_64-freebsd.tar.xz", 10e6},
	{"bench-1.0.0.tar.gz", 8e6},
	{"bench-1.0.0-x86_64-linux-static.tar.xz", 5e6},
	{"bench-1.0.0-manual.tar.xz", 3e6},
	{"bench-1.0.0-x86_64-linux.deb", 2e6},
	{"bench-1.0.0-x86_64-linux.rpm", 1e6},
	{"bench-1.0.0.spdx.json", 512e3},
	{"bench-1.0.0.intoto.jsonl", 256e3},
	{"bench-1.0.0-completions.tar.gz", 64e3},
	{"install.sh", 16e3},
	{"install", 4e3},
}

// manualFiles is the size of the manual.
const manualFiles = 500

// mkrelease lays out dir as `releng build` would leave it for an official
// release: a git repository holding version.json, release/artifacts,
// release/manual and release/build.json. An existing release/build.json is
// kept (the data is deterministic), so that reruns cost nothing.
func mkrelease(dir string) error {
	releaseDir := filepath.Join(dir, "release")
	if _, err := os.Stat(filepath.Join(releaseDir, artifacts.RecordFile)); err == nil {
		fmt.Fprintf(os.Stderr, "benchtool: %s exists, kept\n", filepath.Join(releaseDir, artifacts.RecordFile))
		return nil
	}
	if err := os.RemoveAll(releaseDir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	commit, err := gitRepo(dir)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'r', 'e', 'l', 'e', 'n', 'g'}))
	data := rand.NewChaCha8([32]byte{'d', 'a', 't', 'a'})

	// The jobs and manifest a Lix-like release has; store paths are never
	// looked at (no cache in the bench environment) but are well formed.
	systems := []string{"aarch64-linux", "x86_64-linux"}
	rec := &artifacts.Record{
		Name: name, Version: version, Major: major, OfficialRelease: true,
		Profile: "all", Target: "all", Commit: commit,
		Manifest:   map[string]string{},
		VersionDir: "artifacts/" + name + "/" + name + "-" + version,
	}
	for _, sys := range systems {
		out := storePath(rng, name+"-"+version)
		rec.Manifest[sys] = out
		rec.Jobs = append(rec.Jobs, nixbuild.Job{
			Attr: "build." + sys, Name: name + "-" + version, System: sys,
			DrvPath: storePath(rng, name+"-"+version+".drv"),
			Outputs: map[string]string{"out": out, "doc": storePath(rng, name+"-"+version+"-doc")},
		})
	}
	rec.Jobs = append(rec.Jobs, nixbuild.Job{
		Attr: "tarballs", Name: "tarballs", System: "x86_64-linux",
		DrvPath: storePath(rng, "tarballs.drv"),
		Outputs: map[string]string{"out": storePath(rng, "tarballs")},
	})

	versionDir := filepath.Join(releaseDir, filepath.FromSlash(rec.VersionDir))
	if err := os.MkdirAll(versionDir, 0o755); err != nil {
		return err
	}
	manifest := artifacts.ManifestNix(name, version, rec.Manifest)
	for _, p := range []string{filepath.Join(versionDir, "manifest.nix"), filepath.Join(releaseDir, "artifacts", "manifest.nix")} {
		if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
			return err
		}
	}
	for _, f := range versionFiles {
		if err := writeRandom(filepath.Join(versionDir, f.name), f.size, data); err != nil {
			return err
		}
	}
	if err := artifacts.WriteChecksums(versionDir); err != nil {
		return err
	}
	if err := writeManual(filepath.Join(releaseDir, "manual"), rng); err != nil {
		return err
	}
	for _, top := range []string{"artifacts", "manual"} {
		files, err := artifacts.RecordTree(releaseDir, top)
		if err != nil {
			return err
		}
		rec.Files = append(rec.Files, files...)
	}
	if err := rec.Save(releaseDir); err != nil {
		return err
	}
	var total int64
	for _, f := range rec.Files {
		total += f.Size
	}
	fmt.Fprintf(os.Stderr, "benchtool: wrote %s (%d files, %d bytes)\n", filepath.Join(releaseDir, artifacts.RecordFile), len(rec.Files), total)
	return nil
}

// gitRepo makes dir a git repository with one commit holding version.json
// (release/ and releng.toml, rewritten by run.sh, stay out of it) and
// returns that commit.
func gitRepo(dir string) (string, error) {
	vj := fmt.Sprintf("{\n  \"version\": %q,\n  \"official_release\": true,\n  \"release_name\": \"x\"\n}\n", version)
	if err := os.WriteFile(filepath.Join(dir, "version.json"), []byte(vj), 0o644); err != nil {
		return "", err
	}
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		if _, err := git("init", "-q", "-b", "main"); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, ".git", "info", "exclude"), []byte("/release/\n/releng.toml\n"), 0o644); err != nil {
			return "", err
		}
		if _, err := git("add", "version.json"); err != nil {
			return "", err
		}
		if _, err := git("commit", "-q", "-m", "bench "+version); err != nil {
			return "", err
		}
	}
	return git("rev-parse", "HEAD")
}

const nixBase32 = "0123456789abcdfghijklmnpqrsvwxyz"

func storePath(rng *rand.Rand, suffix string) string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = nixBase32[rng.IntN(len(nixBase32))]
	}
	return "/nix/store/" + string(b) + "-" + suffix
}

func writeRandom(path string, size int64, data *rand.ChaCha8) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		data.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}

// writeManual writes a 500-file mdbook-like manual: a few stylesheets and
// scripts (one 400 kB search index), the rest HTML pages of 2–12 kB in
// chapter directories.
func writeManual(dir string, rng *rand.Rand) error {
	fixed := []struct {
		path string
		size int
	}{
		{"css/general.css", 5000}, {"css/chrome.css", 11000}, {"css/variables.css", 7000}, {"css/print.css", 1500},
		{"FontAwesome/css/font-awesome.css", 31000}, {"highlight.css", 1500}, {"tomorrow-night.css", 1800}, {"ayu-highlight.css", 1300},
		{"book.js", 24000}, {"clipboard.min.js", 10000}, {"elasticlunr.min.js", 19000}, {"mark.min.js", 13000},
		{"highlight.js", 10000}, {"searcher.js", 17000}, {"toc.js", 6000}, {"searchindex.js", 400000}, {"searchindex.json", 390000},
		{"favicon.svg", 1900}, {"index.html", 9000}, {"print.html", 6000}, {"404.html", 4000},
	}
	for _, f := range fixed {
		if err := writeText(filepath.Join(dir, f.path), f.size, rng); err != nil {
			return err
		}
	}
	chapters := []string{"command-ref", "command-ref/new-cli", "language", "language/builtins", "installation", "package-management", "advanced-topics", "release-notes", "contributing", "architecture", "protocols", "store"}
	for i := len(fixed); i < manualFiles; i++ {
		ch := chapters[i%len(chapters)]
		path := filepath.Join(dir, ch, fmt.Sprintf("page-%03d.html", i))
		if err := writeText(path, 2000+rng.IntN(10000), rng); err != nil {
			return err
		}
	}
	return nil
}

var words = strings.Fields(`the store path derivation closure build output substituter cache
	nix expression attribute function evaluation profile channel flake input lock file garbage
	collector root daemon sandbox user group hash signature key trust narinfo manifest release
	version manual option setting command argument flag environment variable shell package`)

// writeText writes size bytes of text shaped by the file's extension.
func writeText(path string, size int, rng *rand.Rand) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var b strings.Builder
	switch filepath.Ext(path) {
	case ".html":
		fmt.Fprintf(&b, "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head><meta charset=\"UTF-8\"><title>%s</title>\n<link rel=\"stylesheet\" href=\"css/general.css\"></head>\n<body><main>\n", filepath.Base(path))
	case ".css":
		b.WriteString("/* generated */\n")
	}
	for b.Len() < size-40 {
		switch filepath.Ext(path) {
		case ".html":
			fmt.Fprintf(&b, "<p>%s <code>%s</code> %s.</p>\n", sentence(rng, 12), words[rng.IntN(len(words))], sentence(rng, 8))
		case ".css":
			fmt.Fprintf(&b, ".%s-%d { margin: %dpx; color: #%06x; }\n", words[rng.IntN(len(words))], rng.IntN(1000), rng.IntN(40), rng.IntN(1<<24))
		default:
			fmt.Fprintf(&b, "var %s%d = %q;\n", words[rng.IntN(len(words))], rng.IntN(100000), sentence(rng, 6))
		}
	}
	if filepath.Ext(path) == ".html" {
		b.WriteString("</main></body>\n</html>\n")
	}
	w.WriteString(b.String())
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sentence(rng *rand.Rand, n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = words[rng.IntN(len(words))]
	}
	return strings.Join(s, " ")
}
