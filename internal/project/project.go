// Package project ties together what every release command needs about the
// checkout being released: its root, releng.toml, the version file and the
// git repository.
package project

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/gitx"
	"github.com/releng-project/releng/internal/versionfile"
)

// Project is a loaded project.
type Project struct {
	Root    string
	Config  *config.Config
	Version *versionfile.File
	Git     *gitx.Repo
}

// Options say where the project is.
type Options struct {
	// Dir is the directory given with -C (default: the working directory).
	Dir string
	// ConfigFile is the --config file (default: DIR/releng.toml).
	ConfigFile string
}

// Open loads the configuration and version file of the project at opts.Dir.
// A missing git repository is an error; callers that can live without git
// use LoadConfig.
func Open(opts Options) (*Project, error) {
	cfg, err := LoadConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := checkReleaseDirs(cfg); err != nil {
		return nil, err
	}
	repo, err := gitx.Open(cfg.Root)
	if err != nil {
		return nil, err
	}
	vf, err := versionfile.Read(cfg.Root, cfg.Abs(cfg.VersionFile))
	if err != nil {
		return nil, err
	}
	return &Project{Root: cfg.Root, Config: cfg, Version: vf, Git: repo}, nil
}

// LoadConfig reads releng.toml for opts.
func LoadConfig(opts Options) (*config.Config, error) {
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, &config.Error{File: abs, Msg: "project directory does not exist (check -C)"}
	}
	path := opts.ConfigFile
	if path == "" {
		path = filepath.Join(abs, config.FileName)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, &config.Error{File: path, Msg: fmt.Sprintf("no %s here; run `releng init` to write one, or use -C DIR / --config FILE", config.FileName)}
		}
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(abs, path)
	}
	return config.Load(path, abs)
}

// Vars returns the template variables of the release.
func (p *Project) Vars() map[string]string {
	return map[string]string{
		"version": p.Version.Version,
		"major":   p.Version.Major(),
		"name":    p.Config.Name,
		"title":   p.Config.Notes.Title,
	}
}

// ReleaseDir is the absolute release directory.
func (p *Project) ReleaseDir() string { return p.Config.Abs(p.Config.ReleaseDir) }

// StateDir is where the journal and remembered branch live.
func (p *Project) StateDir() string { return filepath.Join(p.ReleaseDir(), "state") }

// OutputsFile is the ledger of what releng wrote into the release
// directory (outside state/ and local/).
const OutputsFile = "outputs.json"

// Outputs loads the ledger of the release directory, creating the
// directory if needed: what releng wrote there, the only things it deletes.
func (p *Project) Outputs() (*fsutil.Ledger, error) {
	if err := os.MkdirAll(p.ReleaseDir(), 0o755); err != nil {
		return nil, err
	}
	return fsutil.LoadLedger(p.ReleaseDir(), filepath.Join(p.StateDir(), OutputsFile))
}

// checkReleaseDirs refuses a state/ or local/ in the release directory
// that is a symbolic link leading out of it: releng writes its journal,
// locks and the local environment there.
func checkReleaseDirs(cfg *config.Config) error {
	rel := fsutil.Resolve(cfg.Abs(cfg.ReleaseDir))
	for _, sub := range []string{"state", config.LocalDir} {
		p := filepath.Join(cfg.Abs(cfg.ReleaseDir), sub)
		if real := fsutil.Resolve(p); real != filepath.Join(rel, sub) {
			return &config.Error{File: p, Msg: fmt.Sprintf("is a symbolic link to %s; releng writes its state there, so it must be a directory inside the release directory (remove the link)", real)}
		}
	}
	return nil
}
