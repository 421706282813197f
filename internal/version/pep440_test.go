package version

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseNormalises(t *testing.T) {
	tests := []struct {
		in, want string
		pre      bool
	}{
		// SPEC §5.
		{"2.90.0-beta.1", "2.90.0b1", true},
		{"2.90.0b1", "2.90.0b1", true},
		{"2.90.0-rc1", "2.90.0rc1", true},
		{"2.90.0pre20240411", "2.90.0rc20240411", true},
		{"2.96.0-dev", "2.96.0.dev0", true},
		{"2.96.0.dev0", "2.96.0.dev0", true},
		{"2.93.0", "2.93.0", false},
		{"1.0+abc.1", "1.0+abc.1", false},
		{"1!2.0", "1!2.0", false},
		{"2.93.0.post1", "2.93.0.post1", false},
		// Spellings.
		{"v1.0", "1.0", false},
		{"V1.0", "1.0", false},
		{"  1.0\n", "1.0", false},
		{"\u00a01.0\u3000", "1.0", false},
		{"\x1c1.0\x1f", "1.0", false},
		{"0!1.0", "1.0", false},
		{"01!001.000.010", "1!1.0.10", false},
		{"1.0a", "1.0a0", true},
		{"1.0A1", "1.0a1", true},
		{"1.0alpha2", "1.0a2", true},
		{"1.0.ALPHA.2", "1.0a2", true},
		{"1.0_beta_3", "1.0b3", true},
		{"1.0c1", "1.0rc1", true},
		{"1.0-C", "1.0rc0", true},
		{"1.0preview.4", "1.0rc4", true},
		{"1.0PRE", "1.0rc0", true},
		{"1.0RC07", "1.0rc7", true},
		{"1.0a-", "1.0a0", true},
		{"1.0a-1", "1.0a1", true},
		{"1.0-1", "1.0.post1", false},
		{"1.0-r", "1.0.post0", false},
		{"1.0rev3", "1.0.post3", false},
		{"1.0.post", "1.0.post0", false},
		{"1.0post_", "1.0.post0", false},
		{"1.0-post-2", "1.0.post2", false},
		{"1.0.r.5", "1.0.post5", false},
		{"1.0.dev", "1.0.dev0", true},
		{"1.0DEV_3", "1.0.dev3", true},
		{"1.0a1-1.dev2", "1.0a1.post1.dev2", true},
		{"1.0rc1.post2.dev3+Local-Thing_01.A", "1.0rc1.post2.dev3+local.thing.1.a", true},
		{"1.0.post1", "1.0.post1", false},
		{"1+0", "1+0", false},
		{"1+00.01a", "1+0.01a", false},
		{"1.99999999999999999999999999999", "1.99999999999999999999999999999", false},
		// Python's re.IGNORECASE lets a few non-ASCII letters through, and
		// str.lower() keeps some of them: packaging then carries odd letters.
		{"1.0+\u212a", "1.0+k", false},
		{"1.0+\u017f", "1.0+\u017f", false},
		{"1.0prev\u0131ew", "1.0prev\u0131ew0", true},
		{"1.0+\u0130", "1.0+i\u0307", false},
		{"1.0po\u017ft1", "1.0.post1", false},
	}
	for _, tt := range tests {
		v, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := v.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		if got := v.IsPrerelease(); got != tt.pre {
			t.Errorf("Parse(%q).IsPrerelease() = %v, want %v", tt.in, got, tt.pre)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, s := range []string{
		"", " ", "v", "a", "1.", ".1", "1..0", "1.0-", "1.0_", "1.0+", "1.0+a..b", "1.0+a+b",
		"1.0+a_", "1.0.post1.post2", "1.0dev1a1", "1!", "!1", "1!2!3", "1.0 a1",
		"1.0a1b1", "1.0-1-2", "vv1", "x1.0", "1.0-+a",
		"1.0\x00", "1.0\xff", "\u0661", "1.0+\u00e9", "1.0pr\u00e9", "2.93.0-foo",
		"1.0+" + strings.Repeat("1", maxDigits+1), strings.Repeat("0", maxDigits) + "1",
	} {
		_, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", s)
			continue
		}
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Version != s {
			t.Errorf("Parse(%q): error %v is not an *InvalidError for the string", s, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "PEP 440") || !strings.Contains(msg, "2.93.0") {
			t.Errorf("Parse(%q): error %q does not say what a valid version looks like", s, msg)
		}
		if !strings.Contains(msg, fmt.Sprintf("%q", s)) {
			t.Errorf("Parse(%q): error %q does not quote the string", s, msg)
		}
	}
	// The longest digit run Python converts is valid.
	if _, err := Parse(strings.Repeat("1", maxDigits)); err != nil {
		t.Errorf("Parse(%d digits): %v", maxDigits, err)
	}
}

// ordered is a list of versions in strictly increasing packaging order.
var ordered = []string{
	"1.0.dev456",
	"1.0a1",
	"1.0a2.dev456",
	"1.0a12.dev456",
	"1.0a12",
	"1.0b1.dev456",
	"1.0b2",
	"1.0b2.post345.dev456",
	"1.0b2.post345",
	"1.0b2-346",
	"1.0c1.dev456",
	"1.0c1",
	"1.0rc2",
	"1.0c3",
	"1.0",
	"1.0+abc",
	"1.0+abc.Z",
	"1.0+abc.5",
	"1.0+0",
	"1.0+5",
	"1.0+5.a",
	"1.0.post456.dev34",
	"1.0.post456",
	"1.0.15",
	"1.1.dev1",
	"2.90.0-beta.1-1",
	"2.90.0rc1",
	"2.90.0pre20240411",
	"2.90.0",
	"2.93.0",
	"2.96.0-dev",
	"2.96.0a1",
	"2.96.0",
	"10.0",
	"99999999999999999999.0",
	"1!0.1",
	"2!0",
}

func TestCompareOrder(t *testing.T) {
	vs := make([]PEP440, len(ordered))
	for i, s := range ordered {
		v, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			want := cmpInt(i, j)
			if got := Compare(vs[i], vs[j]); got != want {
				t.Errorf("Compare(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestCompareEqual(t *testing.T) {
	for _, pair := range [][2]string{
		// SPEC §5.
		{"2.90.0-beta.1", "2.90.0b1"},
		{"2.96.0-dev", "2.96.0.dev0"},
		{"2.90.0pre20240411", "2.90.0rc20240411"},
		// Trailing zeros of the release do not count.
		{"1", "1.0.0.0"},
		{"1.0a1", "1.0.0a1"},
		{"0!1.0", "1"},
		{"1.0-1", "1.0.post1"},
		{"1.0+A.01", "1.0+a-1"},
		{"1.0", " v1.0 "},
	} {
		a, err := Parse(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if c := Compare(a, b); c != 0 {
			t.Errorf("Compare(%q, %q) = %d, want 0", pair[0], pair[1], c)
		}
	}
	// Equal, but not the same normalised string: packaging keeps the zeros.
	a, _ := Parse("1.0")
	b, _ := Parse("1.0.0")
	if a.String() == b.String() || Compare(a, b) != 0 {
		t.Errorf("1.0 vs 1.0.0: strings %q %q, Compare %d", a, b, Compare(a, b))
	}
	// An odd spelling of post that packaging does not normalise is a
	// different version, though it prints the same.
	a, _ = Parse("1.0po\u017ft1")
	b, _ = Parse("1.0.post1")
	if a.String() != b.String() || Compare(a, b) != 1 {
		t.Errorf("1.0poſt1 vs 1.0.post1: strings %q %q, Compare %d", a, b, Compare(a, b))
	}
}

func TestMajor(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2.93.0", "2.93"},
		{"2.93", "2.93"},
		{"2.90.0-beta.1", "2.90"},
		{"2.90.0rc1", "2.90"},
		{"2.96.0-dev", "2.96"},
		{"2.93.0.post1", "2.93"},
		{" 2.93.1\n", "2.93"},
	}
	for _, tt := range tests {
		got, err := Major(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Major(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, s := range []string{"2", "2rc1", "", "2.x", "two.three"} {
		if got, err := Major(s); err == nil {
			t.Errorf("Major(%q) = %q, want an error", s, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range ordered {
		f.Add(s)
	}
	for _, s := range []string{
		"2.90.0-beta.1", "2.96.0-dev", "v1!2.3.4-RC.5-6_DEV.7+Ab.8-c", " 1.0\u3000", "1.0po\u017ft", "1+\u0130",
		"1.0a-", "1.0.r", "1+0.0.0", "1.0prev\u0131ew",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Parse(%q): error of type %T", s, err)
			}
			return
		}
		if Compare(v, v) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", s)
		}
		norm := v.String()
		w, err := Parse(norm)
		if !roundTrips(v) {
			// packaging does not round-trip these either (see roundTrips).
			return
		}
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, norm, err)
		}
		if Compare(v, w) != 0 {
			t.Fatalf("Parse(%q) = %q, which parses to a different version %q", s, norm, w)
		}
		if w.String() != norm {
			t.Fatalf("Parse(%q) = %q, which normalises to %q", s, norm, w)
		}
		if w.IsPrerelease() != v.IsPrerelease() {
			t.Fatalf("Parse(%q) = %q: IsPrerelease changed", s, norm)
		}
	})
}

// roundTrips reports whether str(Version(s)) parses back to the same
// version in packaging. It does not when packaging kept a letter it has no
// canonical spelling for: a post segment spelled with ſ prints as "post",
// and İ lowers to "i" + U+0307, which is not valid in a version.
func roundTrips(v PEP440) bool {
	if v.post != nil && v.post.letter != "post" {
		return false
	}
	return !strings.Contains(v.String(), "\u0307")
}

// String returns packaging's normalised form of v, str(Version(s)):
// [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]. releng never prints a
// parsed version; the tests compare this with packaging's to check Parse.
func (v PEP440) String() string {
	var b strings.Builder
	if v.epoch != "0" && v.epoch != "" {
		b.WriteString(v.epoch)
		b.WriteByte('!')
	}
	b.WriteString(strings.Join(v.release, "."))
	if v.pre != nil {
		b.WriteString(v.pre.letter)
		b.WriteString(v.pre.num)
	}
	if v.post != nil {
		// packaging prints the number only, behind ".post", whatever the letter.
		b.WriteString(".post")
		b.WriteString(v.post.num)
	}
	if v.dev != nil {
		b.WriteString(".dev")
		b.WriteString(v.dev.num)
	}
	if v.local != nil {
		b.WriteByte('+')
		for i, p := range v.local {
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p.s)
		}
	}
	return b.String()
}
