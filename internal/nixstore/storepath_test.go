package nixstore

import (
	"strings"
	"testing"
)

func TestParseStorePath(t *testing.T) {
	const h = "fvpcd59hrydw1330x5w93cpqs7r7z9pk"
	tests := []struct {
		dir, in string
		want    string // base name, or the error
		ok      bool
	}{
		{"/nix/store", "/nix/store/" + h + "-releng-b", h + "-releng-b", true},
		{"/nix/store", "/nix/store/" + h + "-a.b_c+d?e=f-1.0", h + "-a.b_c+d?e=f-1.0", true},
		{"/nix/store", "/nix/store/" + h + "-" + strings.Repeat("n", 211), h + "-" + strings.Repeat("n", 211), true},
		{"/nix/store", "/nix/store/" + h + "-.dotfile", h + "-.dotfile", true},
		{"/srv/store", "/srv/store/" + h + "-x", h + "-x", true},
		{"/nix/store", "/nix/store/" + h + "-" + strings.Repeat("n", 212), "212 characters long (limit 211)", false},
		{"/nix/store", "/nix/store/" + h + "-", "expected 32 hash characters", false},
		{"/nix/store", "/nix/store/" + h, "expected 32 hash characters", false},
		{"/nix/store", "/nix/store/" + h[:31] + "-x", "expected 32 hash characters", false},
		{"/nix/store", "/nix/store/" + "e" + h[1:] + "-x", "'e', which is not a nixbase32 character", false},
		{"/nix/store", "/nix/store/" + "U" + h[1:] + "-x", "not a nixbase32 character", false},
		{"/nix/store", "/nix/store/" + h + "-a b", "illegal character ' '", false},
		{"/nix/store", "/nix/store/" + h + "-a/b", "illegal character '/'", false},
		{"/nix/store", "/nix/store/" + h + "-x/bin/sh", "illegal character '/'", false},
		{"/nix/store", "/nix/store/" + h + "-.", `name "." is not allowed`, false},
		{"/nix/store", "/nix/store/" + h + "-..", `name ".." is not allowed`, false},
		{"/nix/store", "/nix/store/" + h + "-.-x", `name ".-x" is not allowed`, false},
		{"/nix/store", "/nix/store/" + h + "-..-x", `name "..-x" is not allowed`, false},
		{"/nix/store", "/gnu/store/" + h + "-x", "not in the store directory /nix/store", false},
		{"/nix/store", "/nix/storex/" + h + "-x", "not in the store directory", false},
		{"/nix/store", h + "-x", "not in the store directory", false},
		{"nix/store", "nix/store/" + h + "-x", "not a clean absolute path", false},
		{"/nix/store/", "/nix/store/" + h + "-x", "not a clean absolute path", false},
	}
	for _, tc := range tests {
		p, err := ParseStorePath(tc.dir, tc.in)
		if tc.ok {
			if err != nil || p.Base() != tc.want || p.String() != tc.in || p.Dir != tc.dir {
				t.Errorf("ParseStorePath(%q, %q) = %+v, %v", tc.dir, tc.in, p, err)
			}
			if q, err := ParseBaseName(tc.dir, p.Base()); err != nil || q != p {
				t.Errorf("ParseBaseName(%q) = %+v, %v", p.Base(), q, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseStorePath(%q, %q): error %v, want %q", tc.dir, tc.in, err, tc.want)
		}
	}
	var zero StorePath
	if !zero.IsZero() || zero.String() != "" || zero.Base() != "" {
		t.Error("zero StorePath")
	}
}
