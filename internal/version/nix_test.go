package version

import "testing"

var drvNameTests = []struct{ in, name, version string }{
	{"hello-2.12.1", "hello", "2.12.1"},
	{"lix-2.93.0", "lix", "2.93.0"},
	{"lix-2.96.0-dev-pre20250101-abcdef0", "lix", "2.96.0-dev-pre20250101-abcdef0"},
	{"foo-bar-1.0", "foo-bar", "1.0"},
	{"foo-bar", "foo-bar", ""},
	{"foo", "foo", ""},
	{"foo-", "foo-", ""},
	{"foo--1", "foo", "-1"},
	{"-1", "", "1"},
	{"-", "-", ""},
	{"", "", ""},
	{"foo-1-bar", "foo", "1-bar"},
	{"foo-_bar", "foo", "_bar"},
	{"foo-.1", "foo", ".1"},
	{"perl5.36.0-Test-Simple-1.0", "perl5.36.0-Test-Simple", "1.0"},
	{"foo-\u00e9t\u00e9", "foo", "\u00e9t\u00e9"},
	{"source-unstable-2024-01-01", "source-unstable", "2024-01-01"},
}

func TestParseDrvName(t *testing.T) {
	for _, tt := range drvNameTests {
		name, version := ParseDrvName(tt.in)
		if name != tt.name || version != tt.version {
			t.Errorf("ParseDrvName(%q) = %q, %q; want %q, %q", tt.in, name, version, tt.name, tt.version)
		}
	}
}

// nixCompareTests hold compareVersions a b.
var nixCompareTests = []struct {
	a, b string
	want int
}{
	// SPEC §5.
	{"1.0", "1.0.0", -1},
	{"2.3pre1", "2.3", -1},
	{"2.3", "2.3rc1", -1},
	{"1.01", "1.1", 0},
	// Nix's own examples and more.
	{"1.0", "2.3", -1},
	{"2.1", "2.3", -1},
	{"2.3", "2.3", 0},
	{"2.5", "2.3", 1},
	{"3.1", "2.3", 1},
	{"2.3.1", "2.3", 1},
	{"2.3.1", "2.3a", 1},
	{"2.3pre1", "2.3pre3", -1},
	{"2.3pre3", "2.3pre12", -1},
	{"2.3a", "2.3c", -1},
	{"2.3pre1", "2.3c", -1},
	{"2.3pre1", "2.3q", -1},
	{"2.3", "2.3.", 0},
	{"2.3-1", "2.3.1", 0},
	{"", "", 0},
	{"", "0", -1},
	{"", "a", -1},
	{"pre", "", -1},
	{"a", "1", -1},
	{"2.3a", "2.3.1", -1},
	{"1.0-rc1", "1.0", 1},
	{"2.96.0-dev", "2.96.0", 1},
	{"B", "a", -1},
	{"1.0\u00e9", "1.0z", 1},
	// Digit runs beyond a 32-bit int are strings to Nix 2.8.
	{"1.2147483647", "1.5", 1},
	{"1.2147483648", "1.5", -1},
	{"1.99999999999999999999999", "1.5", -1},
	{"1.99999999999999999999999", "1.a", -1},
	{"1.2147483648", "1.2147483649", -1},
	{"1.02147483647", "1.2147483647", 0},
	{"1.02147483648", "1.2147483648", -1},
	{"1.000000000000000000000000000000001", "1.1", 0},
	{"1.2147483648", "1", 1},
	{"1.2147483648", "1.pre", 1},
}

func TestCompareNix(t *testing.T) {
	for _, tt := range nixCompareTests {
		if got := CompareNix(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareNix(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareNix(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareNix(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}
