package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

// TestDemoCommand runs the README's first command end to end, then checks
// that status reports what the journal says was published.
func TestDemoCommand(t *testing.T) {
	nix := testenv.SetupNix(t)
	for _, kv := range nix.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	dir := filepath.Join(t.TempDir(), "demo")
	out, errOut, code := run(t, "demo", "--dir", dir)
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Released 1.0.0 of the example project") || !strings.Contains(out, ", 0 failed") {
		t.Errorf("demo output:\n%s", out)
	}
	out, errOut, code = run(t, "-C", dir, "--json", "status")
	if code != 0 {
		t.Fatalf("status after demo: %d %s", code, errOut)
	}
	var st struct {
		OfficialRelease bool `json:"official_release"`
		Artifacts       struct {
			Matches bool `json:"matches_record"`
		}
		Environments []struct {
			Name             string
			PublishedSteps   []string `json:"published_steps"`
			PublishedObjects int      `json:"published_objects"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if !st.OfficialRelease || !st.Artifacts.Matches || len(st.Environments) != 1 {
		t.Fatalf("status after demo: %+v", st)
	}
	e := st.Environments[0]
	if e.Name != "local" || len(e.PublishedSteps) != 6 || e.PublishedObjects == 0 {
		t.Errorf("local environment after demo: %+v", e)
	}
	// A second demo into the same directory refuses.
	if _, errOut, code := run(t, "demo", "--dir", dir); code == 0 || !strings.Contains(errOut, "is not empty") {
		t.Errorf("demo into a used directory: exit %d, %s", code, errOut)
	}
}
