package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
)

// Where a configured path may point (the safety rules of releng.toml):
//
//   - project paths (release_dir, version_file, notes.*) lie inside the
//     project root, after symbolic links are resolved; they are never the
//     root itself nor inside .git; release_dir holds neither .git nor the
//     configuration file.
//   - destinations (an environment's directory buckets, file:// cache, oci:
//     image layouts, a local git remote) may also lie outside the project
//     (absolute, or relative like Lix's "../releng-target"), but never / or
//     a directory that holds the project; inside it they follow the rules
//     of project paths. releng never clears a destination; the only
//     deletions there are the docs mirror's, under manual/NAME/….
//
// Breaking a rule is a configuration error (exit 2) naming the key, its
// line, the path and, when a symbolic link moved it, where it leads.

// pathRule is what a configured path must satisfy.
type pathRule int

const (
	projectPath pathRule = iota // inside the root
	destination                 // anywhere but / or a directory holding the root
)

type configuredPath struct {
	key   string // for the message and the line
	value string // as written (templates allowed)
	rule  pathRule
}

// localPaths lists every path of the configuration that releng reads,
// writes or deletes on this machine.
func (c *Config) localPaths() []configuredPath {
	ps := []configuredPath{
		{"release_dir", c.ReleaseDir, projectPath},
		{"version_file", c.VersionFile, projectPath},
		{"notes.fragments_dir", c.Notes.FragmentsDir, projectPath},
		{"notes.output", c.Notes.Output, projectPath},
		{"notes.summary", c.Notes.Summary, projectPath},
	}
	if c.Notes.Authors != "" {
		ps = append(ps, configuredPath{"notes.authors", c.Notes.Authors, projectPath})
	}
	for _, name := range c.EnvironmentNames() {
		e := c.Environments[name]
		if e.BuiltIn {
			continue
		}
		prefix := "environments." + name
		for _, d := range []struct{ key, value string }{{"releases", e.Releases}, {"docs", e.Docs}} {
			if dir, ok := LocalDirOf(d.value); ok {
				ps = append(ps, configuredPath{prefix + "." + d.key, dir, destination})
			}
		}
		if dir, ok := LocalCacheDirOf(e.Cache); ok {
			ps = append(ps, configuredPath{prefix + ".cache", dir, destination})
		}
		for _, t := range e.Images {
			if dir, ok := strings.CutPrefix(t.Repository, "oci:"); ok {
				ps = append(ps, configuredPath{prefix + ".images", dir, destination})
			}
		}
		if dir, ok := LocalGitRemoteOf(e.GitRemoteURL()); ok {
			ps = append(ps, configuredPath{prefix + ".git_remote", dir, destination})
		}
	}
	return ps
}

// LocalDirOf returns the directory of a bucket location that is one
// (file:///abs or a plain path), and false for s3:// and other URLs.
func LocalDirOf(loc string) (string, bool) {
	switch {
	case loc == "":
		return "", false
	case strings.HasPrefix(loc, "file://"):
		p := strings.TrimPrefix(loc, "file://")
		p = strings.TrimPrefix(p, "localhost")
		p, _, _ = strings.Cut(p, "?")
		return p, p != ""
	case strings.Contains(loc, "://"):
		return "", false
	}
	return loc, true
}

// LocalCacheDirOf returns the directory of a file:// (or bare-path) cache
// store URI.
func LocalCacheDirOf(uri string) (string, bool) {
	p, _, _ := strings.Cut(uri, "?")
	return LocalDirOf(p)
}

var scpLike = regexp.MustCompile(`^[A-Za-z0-9_.@-]+:`)

// LocalGitRemoteOf returns the path of a git remote that is a local
// directory (a path, or file://), and false for network URLs (ssh://,
// https://, user@host:path).
func LocalGitRemoteOf(remote string) (string, bool) {
	switch {
	case remote == "":
		return "", false
	case strings.HasPrefix(remote, "file://"):
		return strings.TrimPrefix(remote, "file://"), true
	case strings.Contains(remote, "://"), scpLike.MatchString(remote) && !strings.HasPrefix(remote, "/") && !strings.HasPrefix(remote, "."):
		return "", false
	}
	return remote, true
}

// placeholderAny stands for every {placeholder} when a templated path is
// checked: a value a placeholder takes is a single path component (versions
// and names are validated before they reach paths).
var placeholderAny = regexp.MustCompile(`\{[^{}]*\}`)

// checkPaths applies the rules above to every local path; root is the
// project root and file the configuration file.
func (c *Config) checkPaths(file string, loc locator) error {
	if c.Root == "" {
		return nil
	}
	root := filepath.Clean(c.Root)
	realRoot := fsutil.Resolve(root)
	paths := c.localPaths()
	sort.SliceStable(paths, func(i, j int) bool { return paths[i].key < paths[j].key })
	for _, p := range paths {
		value := placeholderAny.ReplaceAllString(p.value, "x")
		if err := checkPath(root, realRoot, file, p, value); err != "" {
			return &Error{File: file, Line: loc.line(p.key), Msg: err}
		}
	}
	return nil
}

func checkPath(root, realRoot, configFile string, p configuredPath, value string) string {
	abs := value
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(root, abs)
	}
	abs = filepath.Clean(abs)
	real := fsutil.Resolve(abs)
	via := ""
	if real != abs {
		via = fmt.Sprintf(" (through a symbolic link it leads to %s)", real)
	}
	name := fmt.Sprintf("%s = %q", p.key, p.value)
	insideLex := fsutil.Within(root, abs)
	insideReal := fsutil.Within(realRoot, real)
	gitDir := filepath.Join(realRoot, ".git")

	if p.rule == projectPath || insideLex || insideReal {
		if !insideLex || !insideReal {
			return fmt.Sprintf("%s: is outside the project root %s%s; releng reads and writes only inside the project (use a path relative to the project root)", name, root, via)
		}
		if real == realRoot {
			return fmt.Sprintf("%s: is the project root itself%s; point it at a directory of its own inside the project", name, via)
		}
		if fsutil.Within(gitDir, real) {
			return fmt.Sprintf("%s: is inside the repository's .git directory%s; choose a directory of its own", name, via)
		}
	} else {
		// A destination outside the project (Lix's own local git remote is
		// "../releng-target", a sibling of the checkout).
		if real == "/" || fsutil.Within(real, realRoot) {
			return fmt.Sprintf("%s: holds the project (or is /)%s; a destination must be a directory of its own", name, via)
		}
	}
	if p.key == "release_dir" {
		if configFile != "" && fsutil.Within(real, fsutil.Resolve(filepath.Clean(configFile))) {
			return fmt.Sprintf("%s: holds the configuration file %s%s; releng clears the release directory, so it must not hold the configuration", name, configFile, via)
		}
		if fsutil.Exists(filepath.Join(real, ".git")) {
			return fmt.Sprintf("%s: holds a .git%s; releng clears the release directory, so it must not be a repository", name, via)
		}
	}
	return ""
}
