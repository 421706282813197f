package versionfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const lixFile = `{
    "version": "2.93.0",
    "official_release": false,
    "release_name": "Bici Bici"
}
`

func TestReadAndSetOfficial(t *testing.T) {
	p := filepath.Join(t.TempDir(), "version.json")
	if err := os.WriteFile(p, []byte(lixFile), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Read(filepath.Dir(p), p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != "2.93.0" || f.Major() != "2.93" || f.OfficialRelease || f.ReleaseName != "Bici Bici" {
		t.Fatalf("read %+v", f)
	}
	if err := f.SetOfficial(true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := strings.Replace(lixFile, `"official_release": false`, `"official_release": true`, 1)
	if string(got) != want {
		t.Errorf("after SetOfficial:\n%s\nwant\n%s", got, want)
	}
	again, err := Read(filepath.Dir(p), p)
	if err != nil || !again.OfficialRelease {
		t.Fatalf("re-read: %+v %v", again, err)
	}
	// No temp file left behind.
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after an atomic write", len(entries))
	}
}

func TestBadVersionFiles(t *testing.T) {
	tests := []struct {
		name, content string
		line          int
		want          string
	}{
		{"not json", "{\n    \"version\": \"2.93.0\",\n    oops\n}\n", 3, "not valid JSON"},
		{"no version", "{\"official_release\": false}\n", 0, `missing "version"`},
		{"invalid version", "{\n    \"version\": \"two point nine\"\n}\n", 2, "two point nine"},
		{"shell in version", "{\n    \"version\": \"2.93.0; rm -rf /\"\n}\n", 2, "2.93.0; rm -rf /"},
		{"option in version", "{\"version\": \"--upload-pack=x\"}\n", 1, "--upload-pack=x"},
		{"wrong type", "{\"version\": 2.93}\n", 1, `"version" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { _ = wantParseError(t, tt.content, tt.line, tt.want) })
	}
	if _, err := Read(os.TempDir(), filepath.Join(os.TempDir(), "no-such-dir-releng", "version.json")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing file: %v", err)
	}
}
