package status

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/releng-project/releng/internal/artifacts"
)

// Artifacts says whether a build exists and whether release/ still matches
// release/build.json.
type Artifacts struct {
	Built      bool                `json:"built"`
	Version    string              `json:"version,omitempty"`
	Profile    string              `json:"profile,omitempty"`
	Target     string              `json:"target,omitempty"`
	Commit     string              `json:"commit,omitempty"`
	Files      int                 `json:"files"`
	Bytes      int64               `json:"bytes"`
	Matches    bool                `json:"matches_record"`
	Problems   []artifacts.Problem `json:"problems,omitempty"`
	RecordNote string              `json:"note,omitempty"`
}

func collectArtifacts(releaseDir string) Artifacts {
	var a Artifacts
	if _, err := os.Stat(filepath.Join(releaseDir, artifacts.RecordFile)); errors.Is(err, os.ErrNotExist) {
		a.RecordNote = "not built yet (run releng build)"
		return a
	}
	rec, err := artifacts.Load(releaseDir)
	if err != nil {
		a.RecordNote = err.Error()
		return a
	}
	a.Built, a.Version, a.Profile, a.Target, a.Commit = true, rec.Version, rec.Profile, rec.Target, rec.Commit
	a.Files = len(rec.Files)
	for _, f := range rec.Files {
		a.Bytes += f.Size
	}
	problems, err := rec.Check(releaseDir)
	if err != nil {
		a.RecordNote = err.Error()
		return a
	}
	a.Problems = problems
	a.Matches = len(problems) == 0
	return a
}
