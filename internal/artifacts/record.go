// Package artifacts is the record between `build` and every command after it
// (release/build.json: the jobs, the manifest, every file written with its
// size and sha256) and the helpers that lay out release/artifacts: checksums,
// SHA256SUMS, manifest.nix, tree copies with normalised modes.
package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixbuild"
	"golang.org/x/sync/errgroup"
)

// RecordFile is the record's name under the release directory.
const RecordFile = "build.json"

// Record is release/build.json.
type Record struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Major           string            `json:"major"`
	OfficialRelease bool              `json:"official_release"`
	Profile         string            `json:"profile"`
	Target          string            `json:"target"`
	Commit          string            `json:"commit"`
	Jobs            []nixbuild.Job    `json:"jobs"`
	Manifest        map[string]string `json:"manifest"`
	// VersionDir is the version directory relative to the release dir
	// (artifacts/NAME/NAME-VERSION).
	VersionDir string `json:"version_dir"`
	Files      []File `json:"artifacts"`
	// Images are the natively built container images.
	Images []Image `json:"images,omitempty"`
}

// Image is one natively built image of one system.
type Image struct {
	Name   string `json:"name"`
	System string `json:"system"`
	// Layout is the OCI layout directory relative to the release dir.
	Layout string `json:"layout"`
	// Manifest is the image manifest's digest.
	Manifest string `json:"manifest"`
	// Archive is the docker-archive relative to the release dir.
	Archive string `json:"archive,omitempty"`
}

// File is one file written by build, relative to the release directory.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Load reads releaseDir/build.json, refusing anything but a regular file of
// at most fsutil.MaxRecord bytes (the cap is enforced while reading).
func Load(releaseDir string) (*Record, error) {
	p := filepath.Join(releaseDir, RecordFile)
	data, err := fsutil.ReadFile(p, fsutil.MaxRecord)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no build record; run `releng build` first", p)
		}
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: corrupt build record (%v); run `releng build` again", p, err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("%s: corrupt build record: %v; run `releng build` again", p, err)
	}
	return &r, nil
}

// validate checks what later commands trust the record for: every path
// is a clean relative path inside the release directory (upload reads
// and publishes the files it lists), every file has a size and a sha256.
func (r *Record) validate() error {
	local := func(what, p string) error {
		if p == "" || p == "." || path.Clean(p) != p || !filepath.IsLocal(filepath.FromSlash(p)) || strings.ContainsAny(p, "\\\x00") {
			return fmt.Errorf("%s %q is not a clean relative path inside the release directory", what, p)
		}
		return nil
	}
	if err := local("version_dir", r.VersionDir); err != nil {
		return err
	}
	for _, f := range r.Files {
		if err := local("artifact", f.Path); err != nil {
			return err
		}
		if f.Size < 0 || !sha256Hex.MatchString(f.SHA256) {
			return fmt.Errorf("artifact %q: size %d or sha256 %q is not valid", f.Path, f.Size, f.SHA256)
		}
	}
	for _, im := range r.Images {
		if err := local("image layout", im.Layout); err != nil {
			return err
		}
		if im.Archive != "" {
			if err := local("image archive", im.Archive); err != nil {
				return err
			}
		}
	}
	return nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Save writes the record atomically.
func (r *Record) Save(releaseDir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(releaseDir, RecordFile), append(data, '\n'), 0o644)
}

// Problem is a file that does not match the record.
type Problem struct {
	Path string `json:"path"`
	What string `json:"problem"`
}

// Check re-hashes every recorded file under releaseDir and reports the ones
// that are missing or differ, and files in the recorded trees that the record
// does not list.
func (r *Record) Check(releaseDir string) ([]Problem, error) {
	var (
		problems []Problem
		mu       sync.Mutex
	)
	// Hash on every core: a release is mostly a few large files.
	g := new(errgroup.Group)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, f := range r.Files {
		g.Go(func() error {
			size, sum, err := HashFile(filepath.Join(releaseDir, f.Path))
			var pr *Problem
			switch {
			case errors.Is(err, os.ErrNotExist):
				pr = &Problem{f.Path, "missing"}
			case err != nil:
				return err
			case size != f.Size:
				pr = &Problem{f.Path, fmt.Sprintf("size %d, recorded %d", size, f.Size)}
			case sum != f.SHA256:
				pr = &Problem{f.Path, fmt.Sprintf("sha256 %s, recorded %s", sum, f.SHA256)}
			}
			if pr != nil {
				mu.Lock()
				problems = append(problems, *pr)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	unlisted, err := r.Unlisted(releaseDir)
	if err != nil {
		return nil, err
	}
	problems = append(problems, unlisted...)
	sort.Slice(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	return problems, nil
}

// Unlisted reports the files of the recorded trees (artifacts, manual,
// images) under releaseDir that the record does not list.
func (r *Record) Unlisted(releaseDir string) ([]Problem, error) {
	listed := make(map[string]bool, len(r.Files))
	for _, f := range r.Files {
		listed[f.Path] = true
	}
	var problems []Problem
	for _, top := range []string{"artifacts", "manual", "images"} {
		err := filepath.WalkDir(filepath.Join(releaseDir, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(releaseDir, p)
			if !listed[filepath.ToSlash(rel)] {
				problems = append(problems, Problem{filepath.ToSlash(rel), "not in build.json"})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return problems, nil
}

// HashFile returns a file's size and lowercase hex sha256.
func HashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// RecordTree hashes every regular file under releaseDir/top and returns
// their entries, sorted by path.
func RecordTree(releaseDir, top string) ([]File, error) {
	var files []File
	root := filepath.Join(releaseDir, top)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		size, sum, err := HashFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(releaseDir, p)
		files = append(files, File{Path: filepath.ToSlash(rel), Size: size, SHA256: sum})
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, err
}
