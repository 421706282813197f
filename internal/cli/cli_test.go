package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/testenv"
)

// run executes releng with args and returns stdout, stderr and exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb}, "test")
	return out.String(), errb.String(), code
}

const versionJSON = "{\n    \"version\": \"2.93.0\",\n    \"official_release\": false,\n    \"release_name\": \"Bici Bici\"\n}\n"

func newProject(t *testing.T, toml string) *testenv.GitRepo {
	t.Helper()
	r := testenv.NewGitRepo(t)
	r.Write("releng.toml", toml)
	r.Write("version.json", versionJSON)
	r.CommitAll("initial")
	return r
}

func TestStatusJSON(t *testing.T) {
	r := newProject(t, "name = \"demo\"\n")
	out, errOut, code := run(t, "-C", r.Dir, "--json", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var st struct {
		Name, Version, Major string
		ReleaseName          string `json:"release_name"`
		OfficialRelease      bool   `json:"official_release"`
		Git                  struct {
			Branch string
			Clean  bool
			OnTag  bool `json:"on_tag"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if st.Version != "2.93.0" || st.Major != "2.93" || st.ReleaseName != "Bici Bici" || st.OfficialRelease || st.Git.Branch != "main" || !st.Git.Clean || st.Git.OnTag {
		t.Errorf("status = %+v", st)
	}
	// Human output names the same facts.
	human, _, code := run(t, "-C", r.Dir, "status")
	if code != 0 || !strings.Contains(human, "2.93.0 (major 2.93)") || !strings.Contains(human, "on branch main") {
		t.Errorf("status output:\n%s", human)
	}
	// Detached on the tag.
	r.Git("tag", "-a", "-m", "t", "2.93.0")
	r.Git("checkout", "-q", "--detach", "2.93.0")
	out, _, _ = run(t, "-C", r.Dir, "--json", "status")
	_ = json.Unmarshal([]byte(out), &st)
	if st.Git.Branch != "" || !st.Git.OnTag {
		t.Errorf("detached on tag: %+v", st.Git)
	}
}

func TestBadInputExitCodes(t *testing.T) {
	tests := []struct {
		name, toml, version string
		noGit               bool
		code                int
		want                []string
	}{
		{name: "typo key", toml: "name = \"d\"\n[git]\nmain_brnch = \"x\"\n", code: 2, want: []string{"releng.toml:3:", `unknown key "git.main_brnch"`}},
		{name: "wrong type", toml: "name = \"d\"\n[build]\ncores = \"all\"\n", code: 2, want: []string{"releng.toml:3:"}},
		{name: "bad template", toml: "name = \"d\"\n[notes]\noutput = \"rl-{mjr}.md\"\n", code: 2, want: []string{"releng.toml:3:", "{mjr}"}},
		{name: "missing name", toml: "[git]\nremote = \"origin\"\n", code: 2, want: []string{"releng.toml:1:", "name"}},
		{name: "version not json", toml: "name = \"d\"\n", version: "{version: 1}", code: 2, want: []string{"version.json:1:", "not valid JSON"}},
		{name: "version missing", toml: "name = \"d\"\n", version: "{\"official_release\": false}", code: 2, want: []string{"version.json", `missing "version"`}},
		{name: "version invalid", toml: "name = \"d\"\n", version: "{\"version\": \"latest\"}", code: 2, want: []string{"version.json:1:", "latest"}},
		{name: "outside git", toml: "name = \"d\"\n", noGit: true, code: 1, want: []string{"not a git repository", "-C DIR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tt.noGit {
				dir = testenv.NewGitRepo(t).Dir
			}
			v := tt.version
			if v == "" {
				v = versionJSON
			}
			os.WriteFile(filepath.Join(dir, "releng.toml"), []byte(tt.toml), 0o644)
			os.WriteFile(filepath.Join(dir, "version.json"), []byte(v), 0o644)
			_, errOut, code := run(t, "-C", dir, "status")
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"status", "extra"}, {"--no-such-flag"}} {
		_, errOut, code := run(t, args...)
		if code != 2 || errOut == "" {
			t.Errorf("releng %v: exit %d, stderr %q; want exit 2 with a message", args, code, errOut)
		}
	}
	dir := t.TempDir()
	_, errOut, code := run(t, "-C", dir, "status")
	if code != 2 || !strings.Contains(errOut, "releng init") {
		t.Errorf("no releng.toml: exit %d, %q", code, errOut)
	}
}

func TestInitWritesLoadableConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-project")
	os.Mkdir(dir, 0o755)
	if _, errOut, code := run(t, "-C", dir, "init"); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "releng.toml"))
	if !strings.Contains(string(data), `name = "my-project"`) {
		t.Errorf("init wrote:\n%s", data)
	}
	if _, _, code := run(t, "-C", dir, "init"); code != 2 {
		t.Errorf("second init: exit %d, want 2 (refuses to overwrite)", code)
	}
	if _, _, code := run(t, "-C", dir, "init", "--name", "bad name"); code != 2 {
		t.Errorf("init with a bad name: exit %d", code)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "SUPERSECRET-4f9a8b7c6d5e"
	script := filepath.Join(t.TempDir(), "creds.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho '{\"name\": \"k\", \"id\": \"GKID\", \"secret_key\": \""+secret+"\"}'\n"), 0o755)
	bad := filepath.Join(t.TempDir(), "bad.sh")
	os.WriteFile(bad, []byte("#!/bin/sh\necho 'not json "+secret+"'\necho 'stderr line' >&2\n"), 0o755)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	r := newProject(t, "name = \"d\"\ndefault_environment = \"staging\"\n[environments.staging]\nreleases = \"s3://r\"\ncredentials_command = [\""+script+"\"]\nsigning_key = \"missing.key\"\n")

	var outputs []string
	out, errOut, code := run(t, "-C", r.Dir, "--json", "-v", "status")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	outputs = append(outputs, out, errOut)
	if !strings.Contains(out, `"signing_key_present": false`) {
		t.Errorf("a missing key file is reported: %s", out)
	}

	// The credentials as loaded never format their secret.
	c, err := credentials.FromCommand(context.Background(), []string{script})
	if err != nil || c.Secret.Reveal() != secret {
		t.Fatalf("FromCommand: %v", err)
	}
	js, _ := json.Marshal(c)
	outputs = append(outputs, string(js), c.Secret.String())
	chain, err := credentials.FromChain("")
	if err != nil || chain == nil {
		t.Fatalf("FromChain: %v", err)
	}
	outputs = append(outputs, string(must(json.Marshal(chain))))
	// A failing command's error does not echo its stdout.
	_, err = credentials.FromCommand(context.Background(), []string{bad})
	if err == nil {
		t.Fatal("bad credentials command accepted")
	}
	outputs = append(outputs, err.Error())
	for _, o := range outputs {
		if strings.Contains(o, secret) {
			t.Errorf("secret leaked in: %s", o)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestVersion: --version names the zstd encoder NARs are compressed with,
// since their bytes depend on it (libzstd with cgo, klauspost without).
func TestVersion(t *testing.T) {
	out, _, code := run(t, "--version")
	if code != 0 || out != "releng version test (NARs: zstd by "+binarycache.ZstdEncoder+")\n" {
		t.Fatalf("exit %d, %q", code, out)
	}
}
