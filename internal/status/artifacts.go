package status

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/fsutil"
)

// HashLimit is the size up to which status re-hashes a recorded file; larger
// files are compared by size alone (status must stay quick on a release of
// multi-gigabyte tarballs; `upload` and `verify` hash everything).
const HashLimit = 1 << 20

// Artifacts says whether a build exists, what it is of, and whether release/
// still matches release/build.json.
type Artifacts struct {
	Built   bool   `json:"built"`
	Version string `json:"version,omitempty"`
	Profile string `json:"profile,omitempty"`
	Target  string `json:"target,omitempty"`
	Commit  string `json:"commit,omitempty"`
	// CurrentVersion: the record is of the version in the version file;
	// AtHead: of the commit checked out.
	CurrentVersion bool  `json:"current_version"`
	AtHead         bool  `json:"at_head"`
	Files          int   `json:"files"`
	Bytes          int64 `json:"bytes"`
	// Matches: every recorded file is there with its recorded size (and
	// sha256, for files up to HashLimit bytes, Hashed of them), and the
	// recorded trees hold nothing else.
	Matches    bool                `json:"matches_record"`
	Hashed     int                 `json:"hashed_files"`
	Problems   []artifacts.Problem `json:"problems,omitempty"`
	Images     []Image             `json:"images,omitempty"`
	RecordNote string              `json:"note,omitempty"`
}

// Image is a container image under release/images: one build.json records,
// or one `releng image build` left there.
type Image struct {
	Name     string `json:"name"`
	System   string `json:"system,omitempty"`
	Manifest string `json:"manifest,omitempty"`
	Layout   string `json:"layout"`
	// Present: the layout's index.json is there; ArchivePresent: the
	// docker-archive (when the record names one).
	Present        bool   `json:"present"`
	Archive        string `json:"archive,omitempty"`
	ArchivePresent bool   `json:"archive_present,omitempty"`
	// Recorded: build.json lists it (else `releng image build` made it).
	Recorded bool `json:"recorded"`
}

func collectArtifacts(releaseDir, head, version string) (a Artifacts) {
	defer func() { a.Images = append(a.Images, unrecordedImages(releaseDir, a.Images)...) }()
	if _, err := os.Lstat(filepath.Join(releaseDir, artifacts.RecordFile)); errors.Is(err, os.ErrNotExist) {
		a.RecordNote = "not built yet (run releng build)"
		return a
	}
	rec, err := artifacts.Load(releaseDir)
	if err != nil {
		a.RecordNote = err.Error()
		return a
	}
	a.Built, a.Version, a.Profile, a.Target, a.Commit = true, rec.Version, rec.Profile, rec.Target, rec.Commit
	a.CurrentVersion, a.AtHead = rec.Version == version, head != "" && rec.Commit == head
	a.Files = len(rec.Files)
	for _, f := range rec.Files {
		a.Bytes += f.Size
	}
	for _, im := range rec.Images {
		a.Images = append(a.Images, Image{Name: im.Name, System: im.System, Manifest: im.Manifest, Layout: im.Layout,
			Present: isFile(filepath.Join(releaseDir, filepath.FromSlash(im.Layout), "index.json")),
			Archive: im.Archive, ArchivePresent: im.Archive != "" && isFile(filepath.Join(releaseDir, filepath.FromSlash(im.Archive))),
			Recorded: true})
	}
	a.Problems, a.Hashed, err = checkFiles(releaseDir, rec)
	if err != nil {
		a.RecordNote = err.Error()
		return a
	}
	a.Matches = len(a.Problems) == 0
	return a
}

// checkFiles compares release/ with the record: each file's type and size,
// the sha256 of those up to HashLimit bytes, and no unlisted file in the
// recorded trees.
func checkFiles(releaseDir string, rec *artifacts.Record) (problems []artifacts.Problem, hashed int, err error) {
	for _, f := range rec.Files {
		p := filepath.Join(releaseDir, filepath.FromSlash(f.Path))
		what := ""
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			what = "missing"
		case err != nil:
			return nil, 0, err
		case !st.Mode().IsRegular():
			what = "not a regular file"
		case st.Size() != f.Size:
			what = fmt.Sprintf("size %d, recorded %d", st.Size(), f.Size)
		case f.Size <= HashLimit:
			data, err := fsutil.ReadFile(p, HashLimit)
			if err != nil {
				return nil, 0, err
			}
			hashed++
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 {
				what = fmt.Sprintf("sha256 %x, recorded %s", sum, f.SHA256)
			}
		}
		if what != "" {
			problems = append(problems, artifacts.Problem{Path: f.Path, What: what})
		}
	}
	unlisted, err := rec.Unlisted(releaseDir)
	if err != nil {
		return nil, 0, err
	}
	problems = append(problems, unlisted...)
	sort.Slice(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	return problems, hashed, nil
}

// unrecordedImages lists the OCI layouts under release/images that the
// record does not (those of `releng image build`).
func unrecordedImages(releaseDir string, recorded []Image) []Image {
	known := map[string]bool{}
	for _, im := range recorded {
		known[im.Layout] = true
	}
	entries, _ := os.ReadDir(filepath.Join(releaseDir, "images"))
	var out []Image
	for _, e := range entries {
		layout := "images/" + e.Name()
		if !e.IsDir() || known[layout] || !isFile(filepath.Join(releaseDir, "images", e.Name(), "index.json")) {
			continue
		}
		im := Image{Name: e.Name(), Layout: layout, Present: true}
		if archive := layout + ".tar.gz"; isFile(filepath.Join(releaseDir, filepath.FromSlash(archive))) {
			im.Archive, im.ArchivePresent = archive, true
		}
		out = append(out, im)
	}
	return out
}

// isFile says whether path is a regular file (a link is not followed).
func isFile(path string) bool {
	st, err := os.Lstat(path)
	return err == nil && st.Mode().IsRegular()
}
