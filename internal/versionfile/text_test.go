package versionfile

import (
	"strings"
	"testing"
)

// The release name and version go into the release commit and tag message:
// what is not one line of visible UTF-8 text is refused, naming the file and
// the line.
func TestUnsafeText(t *testing.T) {
	file := func(name string) string {
		return "{\n    \"version\": \"2.93.0\",\n    \"official_release\": false,\n    \"release_name\": \"" + name + "\"\n}\n"
	}
	tests := []struct {
		name, content string
		line          int
		want          string
	}{
		{"BOM", "\xef\xbb\xbf" + lixFile, 1, "starts with a UTF-8 byte order mark (BOM); save it without one"},
		{"UTF-16", "\xff\xfe{\x00", 1, "UTF-16"},
		{"newline escaped", file(`Bici\nBici`), 4, `"release_name" contains U+000A (line feed) at character 5`},
		{"carriage return", file(`Bici\r`), 4, "U+000D (carriage return)"},
		{"RLO raw", file("Bici\u202eiciB"), 4, `"release_name" contains U+202E (right-to-left override`},
		{"RLO escaped", file(`\u202E`), 4, "U+202E"},
		{"isolate", file("a\u2067b"), 4, "U+2067"},
		{"invalid UTF-8", file("Bici \xff"), 4, "not valid UTF-8: byte 0xFF at column 27"},
		{"invalid UTF-8 on line 2", "{\"release_name\": \"x\",\n\"version\": \"2.\xc3\"}\n", 2, "byte 0xC3 at column 15"},
		{"lone surrogate", file(`\ud800`), 4, "U+FFFD"},
		{"NUL", file(`\u0000`), 4, "U+0000"},
		{"newline in version", "{\n    \"version\": \"2.93.0\\n\"\n}\n", 2, `"version" contains U+000A`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wantParseError(t, tt.content, tt.line, tt.want)
			if strings.ContainsAny(err.Error(), "\n\r\u202e\u2067\xff\x00") || strings.Contains(err.Error(), "'ï'") {
				t.Errorf("error %q carries the bad text", err)
			}
		})
	}
	for _, name := range []string{"Bici Bici", "Æsir 夏 👩\u200d💻", ""} {
		if f, err := Parse("v.json", []byte(file(name))); err != nil || f.ReleaseName != name {
			t.Errorf("release name %q: %v", name, err)
		}
	}
}

// wantParseError parses content as /p/version.json and checks that it fails
// with an *Error (exit code 2) naming the file, at line, containing want.
func wantParseError(t *testing.T, content string, line int, want string) error {
	t.Helper()
	_, err := Parse("/p/version.json", []byte(content))
	if err == nil {
		t.Fatal("no error")
	}
	e, ok := err.(*Error)
	if !ok || e.Path != "/p/version.json" || e.Line != line {
		t.Errorf("error %#v (%v), want line %d", err, err, line)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	return err
}
