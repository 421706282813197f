package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml), "/p/releng.toml", "/p")
			if err == nil {
				t.Fatal("no error")
			}
			ce, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T %v is not a *config.Error", err, err)
			}
			if ce.File != "/p/releng.toml" || ce.Line != tt.line {
				t.Errorf("error at %s:%d, want line %d: %v", ce.File, ce.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
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

func TestLoadMissingFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "releng.toml"), dir)
	if err == nil || !strings.Contains(err.Error(), "releng init") {
		t.Errorf("missing file error: %v", err)
	}
	_ = os.Remove
}
