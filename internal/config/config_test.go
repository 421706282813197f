package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/textutil"
)

func TestLixExample(t *testing.T) {
	c, err := Load("testdata/lix.releng.toml", "/src/lix")
	if err != nil {
		t.Fatal(err)
	}
	staging := c.Environments["staging"]
	prod := c.Environments["production"]
	local := c.Environments["local"]
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"name", c.Name, "lix"},
		{"default_environment", c.DefaultEnvironment, "staging"},
		{"release_dir default", c.ReleaseDir, "release"},
		{"git.release_branch", c.Git.ReleaseBranch, "release-{major}"},
		{"git.commit_trailer default", c.Git.CommitTrailer, "Release produced with releng"},
		{"notes.title", c.Notes.Title, "Lix"},
		{"notes.default_tracker", *c.Notes.DefaultTracker, "lix"},
		{"notes.layout", c.Notes.Layout, "spaced"},
		{"notes.link_text", c.Notes.LinkText, "tracker"},
		{"notes.categories", len(c.Notes.Categories), 7},
		{"notes.trackers.nix.aliases", c.Notes.Trackers["nix"].Aliases, []string{"gh"}},
		{"notes.trackers.lix.pr_url", c.Notes.Trackers["lix"].PRURL, "https://git.lix.systems/lix-project/lix/pulls/{n}"},
		{"notes.profiles.github", c.Notes.Profiles["github"], "https://github.com/{user}"},
		{"notes.profile_order default", c.Notes.ProfileOrder, []string{"forgejo", "github"}},
		{"build.cores", c.Build.Cores, 16},
		{"build.max_jobs", c.Build.MaxJobs, 2},
		{"build.manual", c.Build.Manual, Manual{Job: "build.x86_64-linux", Output: "doc", Path: "share/doc/nix/manual"}},
		{"build.cache_exclude_jobs", c.Build.CacheExcludeJobs, []string{"tarballs"}},
		{"environments", c.EnvironmentNames(), []string{"local", "production", "staging"}},
		{"local replaced, not built in", local.BuiltIn, false},
		{"local.confirm", *local.Confirm, false},
		{"local.cache", local.Cache, "s3://local-cache?endpoint=localhost:3900&scheme=http&region=garage&want-mass-query=true&write-nar-listing=true&ls-compression=zstd&narinfo-compression=zstd&compression=zstd&parallel-compression=true"},
		{"local.git_remote", local.GitRemoteURL(), "../releng-target"},
		{"staging.confirm default", *staging.Confirm, true},
		{"staging.colour", staging.Colour, "green"},
		{"staging.credentials_command", staging.CredentialsCommand[len(staging.CredentialsCommand)-1], "docs.staging.lix.systems"},
		{"staging.images", len(staging.Images), 2},
		{"staging.images[1]", staging.Images[1].Repository, "ghcr.io/lix-project/lix-releng-staging"},
		{"production.gerrit", prod.Gerrit, true},
		{"production.git_remote guess", prod.GitRemoteGuess(), `^ssh://(\w+@)?gerrit\.lix\.systems:2022/lix$`},
		{"production.s3_region", prod.S3Region, "global"},
		{"production.images tags", prod.Images[0].Tags, []string{"{version}", "{major}"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		name, toml string
		line       int
		want       string
	}{
		{"typo key", "name = \"x\"\n[notes]\nlayot = \"spaced\"\n", 3, `unknown key "notes.layot" (did you mean "layout"?)`},
		{"typo in environment", "name = \"x\"\n[environments.s]\nsigning_ky = \"k\"\n", 3, `(did you mean "signing_key"?)`},
		{"typo in images", "name = \"x\"\n[[images]]\nname = \"i\"\nmax_layer = 3\n", 4, `(did you mean "max_layers"?)`},
		{"typo top", "name = \"x\"\nrelease_dri = \"r\"\n", 2, `unknown key "release_dri"`},
		{"wrong type", "name = \"x\"\n[build]\nmax_jobs = \"two\"\n", 3, "MaxJobs"},
		{"bad template", "name = \"x\"\n[git]\nrelease_branch = \"release-{majr}\"\n", 3, "unknown placeholder {majr}"},
		{"bad template in env", "name = \"x\"\n[environments.s]\ncredentials_command = [\"ssh\", \"{bucket}\"]\n", 3, "unknown placeholder {bucket}"},
		{"missing name", "version_file = \"v.json\"\n", 1, "missing required key `name`"},
		{"syntax", "name = \"x\"\n[build\n", 2, ""},
		{"bad layout", "name = \"x\"\n[notes]\nlayout = \"tight\"\n", 3, `must be "spaced" or "compact"`},
		{"bad default env", "name = \"x\"\ndefault_environment = \"prod\"\n", 2, `"prod" is not a configured environment`},
		{"bad colour", "name = \"x\"\n[environments.s]\ncolour = \"mauve\"\n", 3, "colour"},
		{"bad guess", "name = \"x\"\n[environments.s]\ngit_remote = { guess = \"(\" }\n", 3, "bad regular expression"},
		{"max_layers 0", "name = \"x\"\n[[images]]\nname = \"i\"\nmax_layers = 0\n", 2, "between 2 and 125"},
		{"max_layers 200", "name = \"x\"\n[[images]]\nname = \"i\"\nmax_layers = 200\n", 2, "between 2 and 125"},
		{"bad size", "name = \"x\"\n[[images]]\nname = \"i\"\nmax_layer_size = \"65 parsecs\"\n", 2, "unknown unit"},
		{"bad growth", "name = \"x\"\n[checks]\nmax_closure_growth = \"ten%\"\n", 3, "percentage"},
		{"bad profile", "name = \"x\"\n[build]\ndefault_profile = \"fast\"\n", 3, `"fast" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { _ = wantConfigError(t, tt.toml, tt.line, tt.want) })
	}
}

// wantConfigError parses text as /p/releng.toml and checks that it fails
// with a *config.Error (exit code 2) at line that contains want.
func wantConfigError(t *testing.T, text string, line int, want string) error {
	t.Helper()
	_, err := Parse([]byte(text), "/p/releng.toml", "/p")
	if err == nil {
		t.Fatal("no error")
	}
	ce, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T %v is not a *config.Error", err, err)
	}
	if ce.File != "/p/releng.toml" || ce.Line != line {
		t.Errorf("error at %s:%d, want line %d: %v", ce.File, ce.Line, line, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	return err
}

// Strings that reach git, URLs, command lines and file names: malformed
// templates, empty required values and unsafe characters are refused with
// the file and the line.
func TestUnsafeConfig(t *testing.T) {
	const env = "name = \"x\"\n[[environments.s.images]]\nrepository = \"r\"\n"
	tests := []struct {
		name, toml string
		line       int
		want       string
	}{
		{"unclosed placeholder", "name = \"x\"\n[git]\nrelease_branch = \"release-{major\"\n", 3, "'{' at character 9 is never closed"},
		{"close before open", "name = \"x\"\n[git]\nrelease_branch = \"}{\"\n", 3, "'}' at character 1 closes no placeholder"},
		{"doubled braces", "name = \"x\"\n[git]\nrelease_branch = \"{{version}}\"\n", 3, "'{' at character 2 opens a placeholder inside the one opened at character 1"},
		{"empty placeholder", "name = \"x\"\n[build]\njobs = \".#release-jobs.{}\"\n", 3, "empty placeholder {} at character 16"},
		{"bad summary template", "name = \"x\"\n[notes]\nsummary = \"doc/{major/SUMMARY.md\"\n", 3, "notes.summary: malformed template"},
		{"bad tracker url", "name = \"x\"\n[notes]\ndefault_tracker = \"gl\"\n[notes.trackers.gl]\nissue_url = \"https://gl/{n\"\n", 5, "notes.trackers.gl.issue_url: malformed template"},
		{"bad tag of second target", env + "[[environments.s.images]]\nrepository = \"q\"\ntags = [\"{version\"]\n", 6, "environments.s.images[1].tags[0]: malformed template"},
		{"bad image contents", "name = \"x\"\n\n[[images]]\nname = \"i\"\ncontents = [\".#a\", \".#b.{system\"]\n", 5, "images[0].contents[1]: malformed template"},
		{"bad image layers", "name = \"x\"\n[[images]]\nname = \"i\"\nlayers = [[\"{sys}\"]]\n", 4, "images[0].layers[0][0]: unknown placeholder {sys}"},
		{"bad image root", "name = \"x\"\n[[images]]\nname = \"i\"\nroot = \"}\"\n", 4, "images[0].root"},

		{"empty release_branch", "name = \"x\"\n[git]\nrelease_branch = \"\"\n", 3, `git.release_branch is empty: give it a value, or remove the line to use the default "release-{major}"`},
		{"empty remote, dotted key", "name = \"x\"\ngit.remote = \"\"\n", 2, "git.remote is empty"},
		{"empty main_branch", "name = \"x\"\n[git]\nmain_branch = \"\"\n", 3, "git.main_branch is empty"},
		{"empty version_file", "name = \"x\"\nversion_file = \"\"\n", 2, `version_file is empty: give it a value, or remove the line to use the default "version.json"`},
		{"empty release_dir", "name = \"x\"\nrelease_dir = \"\"\n", 2, "release_dir is empty"},
		{"empty notes.output", "name = \"x\"\n[notes]\nfragments_dir = \"f\"\noutput = \"\"\n", 4, "notes.output is empty"},
		{"empty notes.title", "name = \"x\"\n[notes]\ntitle = \"\"\n", 3, `notes.title is empty: give it a value, or remove the line to use the default "X"`},
		{"empty build.jobs", "name = \"x\"\n[build]\njobs = \"\"\n", 3, "build.jobs is empty"},
		{"empty manual job, inline table", "name = \"x\"\n[build]\nmanual = { job = \"\" }\n", 3, "build.manual.job is empty"},
		{"empty image compression", "name = \"x\"\n[[images]]\nname = \"i\"\n[[images]]\nname = \"j\"\ncompression = \"\"\n", 6, "images[1].compression is empty"},
		{"empty category", "name = \"x\"\n[notes]\ncategories = [\"Fixes\", \"\"]\ndefault_category = \"Fixes\"\n", 3, "notes.categories[1] is empty"},
		{"empty tag", env + "tags = [\"{version}\", \"\"]\n", 4, "environments.s.images[0].tags[1] is empty"},
		{"empty repository", "name = \"x\"\n[[environments.s.images]]\nrepository = \"\"\n", 2, "missing repository"},
		{"empty environment name", "name = \"x\"\n[environments.\"\"]\ncolour = \"red\"\n", 2, "a key or table name under environments is empty"},
		{"empty command", "name = \"x\"\n[environments.s]\ncredentials_command = [\"\", \"a\"]\n", 3, "credentials_command[0] is empty"},

		{"newline in commit_trailer", "name = \"x\"\n[git]\ncommit_trailer = \"a\\nb\"\n", 3, "git.commit_trailer contains U+000A (line feed) at character 2 (byte offset 1)"},
		{"RLO in title", "name = \"x\"\n[notes]\ntitle = \"Lix\u202ecod\"\n", 3, "notes.title contains U+202E (right-to-left override"},
		{"escape in remote", "name = \"x\"\n[git]\nremote = \"\\u001b[2Jorigin\"\n", 3, "git.remote contains U+001B (escape)"},
		{"tab in main_branch", "name = \"x\"\n\n[git]\nmain_branch = \"ma\\tin\"\n", 4, "git.main_branch contains U+0009 (tab)"},
		{"isolate in repository", "name = \"x\"\n[[environments.s.images]]\nrepository = \"r\u2066\"\n", 3, "environments.s.images[0].repository contains U+2066"},
		{"ZWSP in tag", env + "tags = [\"{version}\u200b\"]\n", 4, "environments.s.images[0].tags[0] contains U+200B (zero width space)"},
		{"RLO in environment name", "name = \"x\"\n[environments.\"st\u202eg\"]\ncolour = \"red\"\n", 2, "a key or table name under environments contains U+202E"},
		{"newline in image name", "name = \"x\"\n[[images]]\nname = \"i\\n\"\n", 3, "images[0].name contains U+000A"},
		{"newline in name", "name = \"x\\ny\"\n", 1, "name contains U+000A"},
		{"BOM", "\xef\xbb\xbfname = \"x\"\n", 1, "starts with a UTF-8 byte order mark (BOM); save it without one"},
		{"invalid UTF-8", "name = \"x\"\n[git]\nremote = \"o\xff\"\n", 3, "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wantConfigError(t, tt.toml, tt.line, tt.want)
			if bad := textutil.CheckText(err.Error()); bad != nil {
				t.Errorf("the message itself %v: %q", bad, err)
			}
		})
	}
	// What may stay: arguments after the command may be empty, and an
	// image's runtime config holds any text.
	ok := "name = \"x\"\n[environments.s]\ncredentials_command = [\"cmd\", \"\", \"--name\", \"releng-{env}\"]\n" +
		"[[images]]\nname = \"i\"\ncontents = [\".#x.{system}\"]\nconfig = { Cmd = [\"sh\", \"-c\", \"a\\nb\"], Labels = { d = \"\\t\" } }\n"
	if _, err := Parse([]byte(ok), "/p/releng.toml", "/p"); err != nil {
		t.Errorf("valid configuration refused: %v", err)
	}
}

func TestInitFileLoadsToDefaults(t *testing.T) {
	text := InitFile("hello")
	c, err := Parse([]byte(text), "releng.toml", "/p")
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults("hello")
	c.Path, c.Root = "", ""
	if !reflect.DeepEqual(c, want) {
		t.Errorf("init file loads to\n%#v\nwant defaults\n%#v", c, want)
	}
	// Every commented default line must itself be valid when uncommented,
	// and give the same value as the default.
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "# [") || strings.HasPrefix(l, "[") {
			lines = append(lines, strings.TrimPrefix(l, "# "))
		} else if strings.HasPrefix(l, "# ") && strings.Contains(l, " = ") && !strings.Contains(l, "Templates") {
			lines = append(lines, strings.TrimPrefix(l, "# "))
		} else if strings.HasPrefix(l, "name =") {
			lines = append(lines, l)
		}
	}
	uncommented := strings.Join(lines, "\n") + "\n"
	if _, err := Parse([]byte(uncommented), "uncommented.toml", "/p"); err != nil {
		t.Errorf("uncommented init file does not load: %v\n%s", err, uncommented)
	}
}

func TestBuiltinLocal(t *testing.T) {
	c := Defaults("demo")
	e, err := c.Environment("")
	if err != nil {
		t.Fatal(err)
	}
	if !e.BuiltIn || e.Name != "local" || *e.Confirm || e.Images[0].Repository != "oci:release/local/images" {
		t.Errorf("built-in local = %+v", e)
	}
	if _, err := c.Environment("production"); err == nil || !strings.Contains(err.Error(), "no environment \"production\"") {
		t.Errorf("unknown environment error: %v", err)
	}
}

func TestTrackersReplacedWhole(t *testing.T) {
	c, err := Parse([]byte("name = \"x\"\n[notes]\ndefault_tracker = \"gl\"\n[notes.trackers.gl]\nissue_url = \"https://gl/{n}\"\npr_url = \"https://gl/mr/{n}\"\n"), "r.toml", "/p")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes.Trackers) != 1 {
		t.Errorf("trackers merged with defaults: %v", c.Notes.Trackers)
	}
}

func TestExpand(t *testing.T) {
	got, err := Expand("{name}/{name}-{version}/", map[string]string{"name": "lix", "version": "2.93.0"})
	if err != nil || got != "lix/lix-2.93.0/" {
		t.Errorf("Expand = %q, %v", got, err)
	}
	if _, err := Expand("release-{major}", map[string]string{"version": "1"}); err == nil || !strings.Contains(err.Error(), "{major}") {
		t.Errorf("missing placeholder error: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"65MB": 65e6, "1GiB": 1 << 30, "500kB": 5e5, "1024": 1024, "1.5MB": 15e5} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestParseGrowth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pct  float64
		size int64
		err  string
	}{
		{in: "10%", pct: 10}, {in: " 2.5 %", pct: 2.5}, {in: "0%"},
		{in: "50MB", size: 50e6}, {in: "1GiB", size: 1 << 30}, {in: "0"},
		{in: "ten%", err: "not a percentage"}, {in: "NaN%", err: "not a percentage"}, {in: "inf%", err: "not a percentage"},
		{in: "-5%", err: "not a percentage"}, {in: "1e3%", err: "not a percentage"},
		{in: "10 percent", err: "neither a percentage"}, {in: "big", err: "neither a percentage"}, {in: "", err: "neither a percentage"},
	} {
		pct, size, err := ParseGrowth(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseGrowth(%q) = %v, %v, %v; want an error with %q", tc.in, pct, size, err, tc.err)
			}
		} else if err != nil || pct != tc.pct || size != tc.size {
			t.Errorf("ParseGrowth(%q) = %v, %v, %v; want %v, %v", tc.in, pct, size, err, tc.pct, tc.size)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "releng.toml"), dir)
	if err == nil || !strings.Contains(err.Error(), "releng init") {
		t.Errorf("missing file error: %v", err)
	}
	_ = os.Remove
}
