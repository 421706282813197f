// Package config reads releng.toml (SPEC §3): the types, every default that
// fits the Lix layout, a strict loader that reports unknown keys and wrong
// types with file:line, and the template expansion used by every path and
// name that depends on the release.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/textutil"
)

// FileName is the configuration file looked up at the project root.
const FileName = "releng.toml"

// Config is the whole of releng.toml after defaults are applied.
type Config struct {
	Name               string `toml:"name"`
	VersionFile        string `toml:"version_file"`
	ReleaseDir         string `toml:"release_dir"`
	DefaultEnvironment string `toml:"default_environment"`

	Git          Git                     `toml:"git"`
	Notes        Notes                   `toml:"notes"`
	Build        Build                   `toml:"build"`
	Environments map[string]*Environment `toml:"environments"`
	Images       []Image                 `toml:"images"`
	Checks       Checks                  `toml:"checks"`

	// Path is the file the configuration was read from ("" for defaults).
	Path string `toml:"-"`
	// Root is the project root the relative paths are resolved against.
	Root string `toml:"-"`
}

// Git is the [git] table (SPEC §3.2).
type Git struct {
	Remote        string `toml:"remote"`
	MainBranch    string `toml:"main_branch"`
	ReleaseBranch string `toml:"release_branch"`
	CommitTrailer string `toml:"commit_trailer"`
}

// Notes is the [notes] table (SPEC §3.3).
type Notes struct {
	FragmentsDir    string             `toml:"fragments_dir"`
	Output          string             `toml:"output"`
	Summary         string             `toml:"summary"`
	SummaryMarker   string             `toml:"summary_marker"`
	SummaryEntry    string             `toml:"summary_entry"`
	Authors         string             `toml:"authors"`
	Title           string             `toml:"title"`
	Categories      []string           `toml:"categories"`
	DefaultCategory string             `toml:"default_category"`
	DefaultTracker  *string            `toml:"default_tracker"`
	Layout          string             `toml:"layout"`
	LinkText        string             `toml:"link_text"`
	CLURL           string             `toml:"cl_url"`
	Trackers        map[string]Tracker `toml:"trackers"`
	Profiles        map[string]string  `toml:"profiles"`
	ProfileOrder    []string           `toml:"profile_order"`
}

// Tracker is one [notes.trackers.NAME] table.
type Tracker struct {
	Aliases  []string `toml:"aliases"`
	IssueURL string   `toml:"issue_url"`
	PRURL    string   `toml:"pr_url"`
}

// Build is the [build] table (SPEC §3.4).
type Build struct {
	Jobs             string   `toml:"jobs"`
	Profiles         []string `toml:"profiles"`
	DefaultProfile   string   `toml:"default_profile"`
	Evaluator        string   `toml:"evaluator"`
	MaxJobs          int      `toml:"max_jobs"`
	Cores            int      `toml:"cores"`
	ManifestJobs     string   `toml:"manifest_jobs"`
	CopyJobs         []string `toml:"copy_jobs"`
	Manual           Manual   `toml:"manual"`
	CacheExcludeJobs []string `toml:"cache_exclude_jobs"`
}

// Manual says where the manual is in the build outputs.
type Manual struct {
	Job    string `toml:"job"`
	Output string `toml:"output"`
	Path   string `toml:"path"`
}

// Environment is one [environments.NAME] table (SPEC §3.5).
type Environment struct {
	Name               string   `toml:"-"`
	Colour             string   `toml:"colour"`
	Confirm            *bool    `toml:"confirm"`
	Releases           string   `toml:"releases"`
	Docs               string   `toml:"docs"`
	Cache              string   `toml:"cache"`
	S3Endpoint         string   `toml:"s3_endpoint"`
	S3Region           string   `toml:"s3_region"`
	CredentialsCommand []string `toml:"credentials_command"`
	SigningKey         string   `toml:"signing_key"`
	PublicKeys         []string `toml:"public_keys"`
	// ReleaseKey is the ed25519 OpenSSH private key file that signs
	// SHA256SUMS, the release tag and image indexes (SPEC §11.1).
	ReleaseKey string `toml:"release_key"`
	// ReleasePublicKey is its public half: an OpenSSH public key line or
	// a file holding one (default: derived from ReleaseKey).
	ReleasePublicKey string        `toml:"release_public_key"`
	GitRemote        any           `toml:"git_remote"`
	Gerrit           bool          `toml:"gerrit"`
	Images           []ImageTarget `toml:"images"`
	// BuiltIn is true for the built-in local environment.
	BuiltIn bool `toml:"-"`
}

// ImageTarget is one [[environments.NAME.images]] entry.
type ImageTarget struct {
	Repository string   `toml:"repository"`
	Images     []string `toml:"images"`
	Insecure   bool     `toml:"insecure"`
	Tags       []string `toml:"tags"`
}

// Image is one [[images]] entry (SPEC §3.6).
type Image struct {
	Name         string      `toml:"name"`
	Systems      []string    `toml:"systems"`
	Contents     []string    `toml:"contents"`
	Root         string      `toml:"root"`
	Layers       [][]string  `toml:"layers"`
	MaxLayers    int         `toml:"max_layers"`
	MaxLayerSize string      `toml:"max_layer_size"`
	Compression  string      `toml:"compression"`
	Config       ImageConfig `toml:"config"`
	TmpDirs      []string    `toml:"tmp_dirs"`
	NixDB        bool        `toml:"nix_db"`
	Created      string      `toml:"created"`
}

// ImageConfig is the OCI runtime configuration of an image.
type ImageConfig struct {
	Env        []string          `toml:"Env" json:"Env,omitempty"`
	Cmd        []string          `toml:"Cmd" json:"Cmd,omitempty"`
	Entrypoint []string          `toml:"Entrypoint" json:"Entrypoint,omitempty"`
	WorkingDir string            `toml:"WorkingDir" json:"WorkingDir,omitempty"`
	User       string            `toml:"User" json:"User,omitempty"`
	Labels     map[string]string `toml:"Labels" json:"Labels,omitempty"`
}

// Checks is the [checks] table (SPEC §3.7).
type Checks struct {
	MaxClosureGrowth string `toml:"max_closure_growth"`
}

// Error is a configuration error: exit code 2, with the file and line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// Defaults returns the configuration a releng.toml holding only name gets.
func Defaults(name string) *Config {
	c := &Config{Name: name}
	c.applyDefaults(nil)
	return c
}

// Load reads and validates the configuration file at path; root is the
// project root (the file's directory when empty).
func Load(path, root string) (*Config, error) {
	data, err := fsutil.ReadFile(path, fsutil.MaxConfig)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: path, Msg: "no such file; run `releng init` to write one, or pass --config FILE"}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	if root == "" {
		root = filepath.Dir(path)
	}
	return Parse(data, path, root)
}

// Parse decodes data (the contents of file) strictly and applies defaults.
func Parse(data []byte, file, root string) (*Config, error) {
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return nil, &Error{File: file, Line: 1, Msg: "starts with a UTF-8 byte order mark (BOM); save it without one"}
	}
	c := &Config{Path: file, Root: root}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(file, data, err)
	}
	loc := locator{data: data}
	if err := checkNotEmpty(data, file, loc, c.Name); err != nil {
		return nil, err
	}
	seen := loc.presentKeys()
	c.applyDefaults(seen)
	if err := c.validate(file, loc); err != nil {
		return nil, err
	}
	if err := c.checkPaths(file, loc); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeError(file string, data []byte, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		var msgs []string
		first := 0
		for i, e := range strict.Errors {
			row, _ := e.Position()
			if i == 0 {
				first = row
			}
			msg := fmt.Sprintf("unknown key %q", strings.Join(e.Key(), "."))
			if i > 0 {
				msg = fmt.Sprintf("line %d: %s", row, msg)
			}
			if k := e.Key(); len(k) > 0 {
				if best, d := textutil.Closest(k[len(k)-1], knownKeys(k[:len(k)-1])); best != "" && d <= 2 {
					msg += fmt.Sprintf(" (did you mean %q?)", best)
				}
			}
			msgs = append(msgs, msg)
		}
		return &Error{File: file, Line: first, Msg: strings.Join(msgs, "; ") + " (check the spelling against SPEC §3 or `releng init`)"}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return &Error{File: file, Line: row, Msg: de.Error()}
	}
	// Type mismatches are reported without position by the decoder: find the
	// key in the text.
	msg := err.Error()
	line := 0
	if m := regexp.MustCompile(`toml: cannot (?:decode|store) .* into .*field (\S+)\.(\w+) of type`).FindStringSubmatch(msg); m != nil {
		line = locator{data: data}.lineOfGoField(m[2])
	}
	return &Error{File: file, Line: line, Msg: "wrong type: " + strings.TrimPrefix(msg, "toml: ")}
}

func (c *Config) applyDefaults(seen map[string]bool) {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.VersionFile, "version.json")
	def(&c.ReleaseDir, "release")
	def(&c.DefaultEnvironment, "local")

	def(&c.Git.Remote, "origin")
	def(&c.Git.MainBranch, "main")
	def(&c.Git.ReleaseBranch, "release-{major}")
	if seen == nil || !seen["git.commit_trailer"] {
		def(&c.Git.CommitTrailer, "Release produced with releng")
	}

	n := &c.Notes
	def(&n.FragmentsDir, "doc/manual/rl-next")
	def(&n.Output, "doc/manual/src/release-notes/rl-{major}.md")
	def(&n.Summary, "doc/manual/src/SUMMARY.md")
	if seen == nil || !seen["notes.summary_marker"] {
		def(&n.SummaryMarker, "  <!-- RELENG-AUTO-INSERTION-MARKER")
	}
	def(&n.SummaryEntry, "- [{title} {major} ({date})](release-notes/rl-{major}.md)")
	if seen == nil || !seen["notes.authors"] {
		def(&n.Authors, "doc/manual/change-authors.yml")
	}
	if n.Title == "" && c.Name != "" {
		n.Title = strings.ToUpper(c.Name[:1]) + c.Name[1:]
	}
	if n.Categories == nil {
		n.Categories = []string{"Breaking Changes", "Features", "Improvements", "Fixes", "Packaging", "Development", "Miscellany"}
	}
	def(&n.DefaultCategory, "Miscellany")
	if n.DefaultTracker == nil {
		lix := "lix"
		n.DefaultTracker = &lix
	}
	def(&n.Layout, "spaced")
	def(&n.LinkText, "tracker")
	def(&n.CLURL, "https://gerrit.lix.systems/c/lix/+/{n}")
	if n.Trackers == nil {
		n.Trackers = map[string]Tracker{
			"lix": {Aliases: []string{"fj"}, IssueURL: "https://git.lix.systems/lix-project/lix/issues/{n}", PRURL: "https://git.lix.systems/lix-project/lix/pulls/{n}"},
			"nix": {Aliases: []string{"gh"}, IssueURL: "https://github.com/NixOS/nix/issues/{n}", PRURL: "https://github.com/NixOS/nix/pull/{n}"},
		}
	}
	if n.Profiles == nil {
		n.Profiles = map[string]string{"forgejo": "https://git.lix.systems/{user}", "github": "https://github.com/{user}"}
	}
	if n.ProfileOrder == nil {
		for _, k := range []string{"forgejo", "github"} {
			if _, ok := n.Profiles[k]; ok {
				n.ProfileOrder = append(n.ProfileOrder, k)
			}
		}
		var rest []string
		for k := range n.Profiles {
			if k != "forgejo" && k != "github" {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		n.ProfileOrder = append(n.ProfileOrder, rest...)
	}

	b := &c.Build
	def(&b.Jobs, ".#release-jobs.{profile}")
	if b.Profiles == nil {
		b.Profiles = []string{"all", "x86_64-linux-only"}
	}
	def(&b.DefaultProfile, "all")
	def(&b.Evaluator, "auto")
	if seen == nil || !seen["build.max_jobs"] {
		b.MaxJobs = 2
	}
	def(&b.ManifestJobs, "build")
	if b.CopyJobs == nil {
		b.CopyJobs = []string{"tarballs"}
	}
	def(&b.Manual.Job, "build.x86_64-linux")
	def(&b.Manual.Output, "doc")
	def(&b.Manual.Path, "share/doc/nix/manual")
	if b.CacheExcludeJobs == nil {
		b.CacheExcludeJobs = []string{"tarballs"}
	}

	if c.Environments == nil {
		c.Environments = map[string]*Environment{}
	}
	for name, e := range c.Environments {
		e.Name = name
		if e.Confirm == nil {
			v := name != "local"
			e.Confirm = &v
		}
		for i := range e.Images {
			if e.Images[i].Tags == nil {
				e.Images[i].Tags = []string{"{version}", "{major}"}
			}
		}
	}
	if _, ok := c.Environments["local"]; !ok {
		c.Environments["local"] = builtinLocal()
	}

	for i := range c.Images {
		im := &c.Images[i]
		if im.MaxLayers == 0 && (seen == nil || !seen[fmt.Sprintf("images.%d.max_layers", i)]) {
			im.MaxLayers = 100
		}
		def(&im.MaxLayerSize, "65MB")
		def(&im.Compression, "gzip")
		if im.TmpDirs == nil {
			im.TmpDirs = []string{"/tmp", "/var/tmp"}
		}
	}
}

// LocalDir is the directory, under the release directory, of the built-in
// local environment.
const LocalDir = "local"

func builtinLocal() *Environment {
	f := false
	return &Environment{
		Name:       "local",
		Colour:     "blue",
		Confirm:    &f,
		Releases:   "release/local/releases",
		Docs:       "release/local/docs",
		Cache:      "release/local/cache?compression=zstd",
		SigningKey: "release/local/signing.key",
		GitRemote:  "release/local/git",
		Images:     []ImageTarget{{Repository: "oci:release/local/images", Tags: []string{"{version}", "{major}"}}},
		BuiltIn:    true,
	}
}

// Environment returns the named environment, or the default one for "".
func (c *Config) Environment(name string) (*Environment, error) {
	if name == "" {
		name = c.DefaultEnvironment
	}
	e, ok := c.Environments[name]
	if !ok {
		return nil, &Error{File: c.Path, Msg: fmt.Sprintf("no environment %q; configured: %s", name, strings.Join(c.EnvironmentNames(), ", "))}
	}
	return e, nil
}

// EnvironmentNames lists the environments, sorted.
func (c *Config) EnvironmentNames() []string {
	var names []string
	for n := range c.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Abs resolves a path of the configuration against the project root.
func (c *Config) Abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Root, p)
}

// GitRemoteGuess returns the regular expression of a `{ guess = "…" }`
// git_remote, or "" when the remote is a plain URL.
func (e *Environment) GitRemoteGuess() string {
	if m, ok := e.GitRemote.(map[string]any); ok {
		s, _ := m["guess"].(string)
		return s
	}
	return ""
}

// GitRemoteURL returns a plain git_remote URL or path ("" when unset or a guess).
func (e *Environment) GitRemoteURL() string {
	s, _ := e.GitRemote.(string)
	return s
}

var colours = map[string]bool{"": true, "black": true, "red": true, "green": true, "yellow": true, "blue": true, "magenta": true, "cyan": true, "white": true}

func (c *Config) validate(file string, loc locator) error {
	errf := func(key, format string, args ...any) error {
		return &Error{File: file, Line: loc.line(key), Msg: fmt.Sprintf(format, args...)}
	}
	if c.Name == "" {
		return &Error{File: file, Line: 1, Msg: "missing required key `name` (the project name, e.g. name = \"lix\")"}
	}
	if err := c.checkText(file, loc); err != nil {
		return err
	}
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`).MatchString(c.Name) {
		return errf("name", "name %q: use letters, digits, '.', '_', '+' and '-' only", c.Name)
	}
	if _, ok := c.Environments[c.DefaultEnvironment]; !ok {
		return errf("default_environment", "default_environment %q is not a configured environment (have: %s)", c.DefaultEnvironment, strings.Join(c.EnvironmentNames(), ", "))
	}
	n := c.Notes
	if n.Layout != "spaced" && n.Layout != "compact" {
		return errf("notes.layout", "notes.layout %q: must be \"spaced\" or \"compact\"", n.Layout)
	}
	if n.LinkText != "tracker" && n.LinkText != "as-written" {
		return errf("notes.link_text", "notes.link_text %q: must be \"tracker\" or \"as-written\"", n.LinkText)
	}
	if !contains(n.Categories, n.DefaultCategory) {
		return errf("notes.default_category", "notes.default_category %q is not one of notes.categories", n.DefaultCategory)
	}
	if *n.DefaultTracker != "" {
		if _, ok := n.Trackers[*n.DefaultTracker]; !ok {
			return errf("notes.default_tracker", "notes.default_tracker %q is not a configured tracker", *n.DefaultTracker)
		}
	}
	for _, k := range n.ProfileOrder {
		if _, ok := n.Profiles[k]; !ok {
			return errf("notes.profile_order", "notes.profile_order names %q, which is not in [notes.profiles]", k)
		}
	}
	if !contains(c.Build.Profiles, c.Build.DefaultProfile) {
		return errf("build.default_profile", "build.default_profile %q is not one of build.profiles %v", c.Build.DefaultProfile, c.Build.Profiles)
	}
	switch c.Build.Evaluator {
	case "auto", "nix-eval-jobs", "nix":
	default:
		return errf("build.evaluator", "build.evaluator %q: must be \"auto\", \"nix-eval-jobs\" or \"nix\"", c.Build.Evaluator)
	}
	if c.Build.MaxJobs < 0 || c.Build.Cores < 0 {
		return errf("build.max_jobs", "build.max_jobs and build.cores must not be negative")
	}

	// Templates: every placeholder must be known.
	templ := map[string]string{
		"git.release_branch":  c.Git.ReleaseBranch,
		"notes.output":        n.Output,
		"notes.summary":       n.Summary,
		"notes.summary_entry": n.SummaryEntry,
		"notes.cl_url":        n.CLURL,
		"build.jobs":          c.Build.Jobs,
	}
	for name, t := range n.Trackers {
		templ["notes.trackers."+name+".issue_url"] = t.IssueURL
		templ["notes.trackers."+name+".pr_url"] = t.PRURL
	}
	for name, p := range n.Profiles {
		templ["notes.profiles."+name] = p
	}
	for _, e := range c.Environments {
		if e.BuiltIn {
			continue
		}
		prefix := "environments." + e.Name
		if !colours[e.Colour] {
			return errf(prefix+".colour", "environments.%s.colour %q: use one of black, red, green, yellow, blue, magenta, cyan, white", e.Name, e.Colour)
		}
		for i, a := range e.CredentialsCommand {
			templ[fmt.Sprintf("%s.credentials_command[%d]", prefix, i)] = a
		}
		for i, t := range e.Images {
			if t.Repository == "" {
				return errf(prefix+".images", "environments.%s.images[%d]: missing repository", e.Name, i)
			}
			for j, tag := range t.Tags {
				templ[fmt.Sprintf("%s.images[%d].tags[%d]", prefix, i, j)] = tag
			}
			for _, im := range t.Images {
				if c.Image(im) == nil && len(c.Images) > 0 {
					return errf(prefix+".images", "environments.%s.images[%d] names image %q, which is not an [[images]] entry", e.Name, i, im)
				}
			}
		}
		switch r := e.GitRemote.(type) {
		case nil, string:
		case map[string]any:
			g, ok := r["guess"].(string)
			if !ok || len(r) != 1 {
				return errf(prefix+".git_remote", "environments.%s.git_remote: a table must be exactly { guess = \"REGEX\" }", e.Name)
			}
			if _, err := regexp.Compile(g); err != nil {
				return errf(prefix+".git_remote", "environments.%s.git_remote guess: bad regular expression: %v", e.Name, err)
			}
		default:
			return errf(prefix+".git_remote", "environments.%s.git_remote: must be a URL/path string or { guess = \"REGEX\" }", e.Name)
		}
	}
	for i, im := range c.Images {
		key := fmt.Sprintf("images[%d]", i)
		if im.Name == "" {
			return errf("images", "%s: missing name", key)
		}
		if im.MaxLayers < 2 || im.MaxLayers > 125 {
			return errf("images", "image %q: max_layers = %d: must be between 2 and 125 (Docker and overlay2 fail past about 125 layers)", im.Name, im.MaxLayers)
		}
		if _, err := ParseSize(im.MaxLayerSize); err != nil {
			return errf("images", "image %q: max_layer_size: %v", im.Name, err)
		}
		if im.Compression != "gzip" && im.Compression != "zstd" {
			return errf("images", "image %q: compression %q: must be \"gzip\" or \"zstd\"", im.Name, im.Compression)
		}
		for j, ct := range im.Contents {
			templ[fmt.Sprintf("%s.contents[%d]", key, j)] = ct
		}
		for j, g := range im.Layers {
			for k, l := range g {
				templ[fmt.Sprintf("%s.layers[%d][%d]", key, j, k)] = l
			}
		}
		templ[key+".root"] = im.Root
	}
	if g := c.Checks.MaxClosureGrowth; g != "" {
		if _, _, err := ParseGrowth(g); err != nil {
			return errf("checks.max_closure_growth", "checks.max_closure_growth: %v", err)
		}
	}
	keys := make([]string, 0, len(templ))
	for k := range templ {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := CheckTemplate(templ[k]); err != nil {
			return &Error{File: file, Line: lineFor(loc, k), Msg: fmt.Sprintf("%s: %v", k, err)}
		}
	}
	return nil
}

// Image returns the [[images]] entry with that name, or nil.
func (c *Config) Image(name string) *Image {
	for i := range c.Images {
		if c.Images[i].Name == name {
			return &c.Images[i]
		}
	}
	return nil
}

// lineFor is the line of the key at path, written as errors name keys
// (images[0].contents[1]), or else of the nearest enclosing key or table
// the locator finds (images.0.contents, then images.0 …), 0 for none.
func lineFor(loc locator, path string) int {
	p := indexRe.ReplaceAllString(path, ".$1")
	for p != "" {
		if n := loc.line(p); n > 0 {
			return n
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var indexRe = regexp.MustCompile(`\[(\d+)\]`)

// requiredKeys must not be written as "": each has a default that an empty
// string would otherwise silently stand for (SPEC §3), and an empty branch,
// remote, path or template is never what was meant. images.N.KEY stands for
// the key in every [[images]] entry.
var requiredKeys = []string{
	"version_file", "release_dir", "default_environment",
	"git.remote", "git.main_branch", "git.release_branch",
	"notes.fragments_dir", "notes.output", "notes.summary", "notes.summary_entry",
	"notes.title", "notes.default_category", "notes.layout", "notes.link_text", "notes.cl_url",
	"build.jobs", "build.default_profile", "build.evaluator", "build.manifest_jobs",
	"build.manual.job", "build.manual.output", "build.manual.path",
	"images.N.name", "images.N.max_layer_size", "images.N.compression",
}

// checkNotEmpty refuses a required key set to "" (before applyDefaults
// replaces it). It reads the document again as plain tables, so a key
// written in an inline table or as a dotted key is found too.
func checkNotEmpty(data []byte, file string, loc locator, name string) error {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil // the strict decode accepted it; nothing more to say
	}
	defaults := map[string]string{}
	_ = walkStrings(reflect.ValueOf(Defaults(name)).Elem(), "", func(path, s string, key bool) error {
		if !key {
			defaults[path] = s
		}
		return nil
	})
	defaults["images.N.max_layer_size"], defaults["images.N.compression"] = "65MB", "gzip"
	images, _ := doc["images"].([]any)
	for _, k := range requiredKeys {
		paths := []string{k}
		if rest, ok := strings.CutPrefix(k, "images.N."); ok {
			paths = nil
			for i := range images {
				paths = append(paths, fmt.Sprintf("images[%d].%s", i, rest))
			}
		}
		for _, p := range paths {
			v, ok := lookup(doc, p)
			if !ok || v != "" {
				continue
			}
			msg := fmt.Sprintf("%s is empty: give it a value", p)
			if d := defaults[k]; d != "" {
				msg += fmt.Sprintf(", or remove the line to use the default %q", d)
			}
			return &Error{File: file, Line: lineFor(loc, p), Msg: msg}
		}
	}
	return nil
}

// lookup returns the string at path (dotted, with [N] for an entry of an
// array of tables) in a document decoded into plain maps.
func lookup(doc map[string]any, path string) (string, bool) {
	var cur any = doc
	for _, part := range strings.Split(indexRe.ReplaceAllString(path, ".$1"), ".") {
		switch t := cur.(type) {
		case map[string]any:
			cur = t[part]
		case []any:
			var i int
			if _, err := fmt.Sscan(part, &i); err != nil || i >= len(t) {
				return "", false
			}
			cur = t[i]
		default:
			return "", false
		}
	}
	s, ok := cur.(string)
	return s, ok
}

// checkText refuses text that must not reach a commit or tag message, a
// ref, a URL, a command line or a file name: every string of the
// configuration, and every table name, must be one line of visible UTF-8
// text (textutil.CheckText), and no entry of a list may be empty (the
// arguments of credentials_command after the first may). Only an image's
// runtime config ([images.config]: Env, Cmd, Labels …) may hold any text:
// it goes into the image as it is.
func (c *Config) checkText(file string, loc locator) error {
	skipEmpty := regexp.MustCompile(`\.credentials_command\[[1-9][0-9]*\]$`)
	return walkStrings(reflect.ValueOf(c).Elem(), "", func(path, s string, key bool) error {
		if key {
			where := "a key or table name under " + path
			if path == "" {
				where = "a key name"
			}
			line := lineFor(loc, strings.TrimPrefix(path+"."+s, "."))
			if s == "" {
				return &Error{File: file, Line: line, Msg: where + " is empty"}
			}
			if err := textutil.CheckText(s); err != nil {
				return &Error{File: file, Line: line, Msg: fmt.Sprintf("%s %v", where, err)}
			}
			return nil
		}
		if err := textutil.CheckText(s); err != nil {
			return &Error{File: file, Line: lineFor(loc, path), Msg: fmt.Sprintf("%s %v", path, err)}
		}
		if s == "" && strings.HasSuffix(path, "]") && !skipEmpty.MatchString(path) {
			return &Error{File: file, Line: lineFor(loc, path), Msg: fmt.Sprintf("%s is empty: a list entry needs a value", path)}
		}
		return nil
	})
}

// walkStrings calls visit with every string in v (a configuration value)
// and its key path as errors name it (notes.categories[2],
// images[0].name). Map keys are visited (key = true, with the map's path)
// before what is under them, in sorted order. An image's runtime config
// (ImageConfig) is not walked.
func walkStrings(v reflect.Value, path string, visit func(path, s string, key bool) error) error {
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch v.Kind() {
	case reflect.String:
		return visit(path, v.String(), false)
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walkStrings(v.Elem(), path, visit)
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if err := walkStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), visit); err != nil {
				return err
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			if err := visit(path, k.String(), true); err != nil {
				return err
			}
			if err := walkStrings(v.MapIndex(k), join(k.String()), visit); err != nil {
				return err
			}
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(ImageConfig{}) {
			return nil
		}
		for i := 0; i < v.NumField(); i++ {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			if err := walkStrings(v.Field(i), join(tag), visit); err != nil {
				return err
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// knownKeys lists the keys allowed in the table at path (e.g. ["notes"] or
// ["environments", "staging"]), from the toml tags of the types.
func knownKeys(path []string) []string {
	t := reflect.TypeOf(Config{})
	for i := 0; i < len(path); {
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
			i++ // the map key (an environment or tracker name)
			continue
		case reflect.Slice, reflect.Pointer:
			t = t.Elem()
			continue
		case reflect.Struct:
			found := false
			for f := 0; f < t.NumField(); f++ {
				if tag, _, _ := strings.Cut(t.Field(f).Tag.Get("toml"), ","); tag == path[i] {
					t, found = t.Field(f).Type, true
					break
				}
			}
			if !found {
				return nil
			}
			i++
			continue
		}
		return nil
	}
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for f := 0; f < t.NumField(); f++ {
		if tag, _, _ := strings.Cut(t.Field(f).Tag.Get("toml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}
