// Package example embeds the example project that `releng init --example`
// writes and `releng demo` releases: a flake with no inputs whose
// derivations build with /bin/sh, release-note fragments, an authors file,
// version.json and releng.toml.
package example

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed all:project
var files embed.FS

// Files returns the example project's files (paths relative to its root).
func Files() fs.FS {
	sub, err := fs.Sub(files, "project")
	if err != nil {
		panic(err)
	}
	return sub
}

// Write copies the example project into dir. It refuses, before writing
// anything, if any of the files already exists (unless overwrite).
func Write(dir string, overwrite bool) ([]string, error) {
	src := Files()
	var paths []string
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !overwrite {
		for _, p := range paths {
			if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
				return nil, fmt.Errorf("%s already exists; the example project is written into an empty directory (or pass --force)", filepath.Join(dir, p))
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	for _, p := range paths {
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return nil, err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return nil, err
		}
	}
	return paths, nil
}
