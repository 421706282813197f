package nixstore

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseHash(t *testing.T) {
	const nix32 = "sha256:1nnw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7l"
	forms := []string{
		nix32,
		"sha256-9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No=",
		"sha256:9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No=",
		"sha256:f46c1a0ba3113a3dd19a8a052a38c9795691b8a97e74d9842942c85c9014dcda",
	}
	for _, f := range forms {
		h, err := ParseHash(f)
		if err != nil {
			t.Fatalf("ParseHash(%q): %v", f, err)
		}
		if h.String() != nix32 || h.SRI() != forms[1] {
			t.Errorf("ParseHash(%q) = %s / %s", f, h, h.SRI())
		}
	}
	for _, bad := range []string{
		"", "sha256", "sha256:", "sha1:1nnw2j85rj22562djx3ym6w92mkrr4w2",
		"sha512-9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No=",
		"1nnw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7l",
		"sha256:1nnw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7",  // 51 chars
		"sha256:ennw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7l", // 'e'
		"sha256-" + strings.Repeat("!", 44),
	} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
	var h Hash
	if err := json.Unmarshal([]byte(`"`+forms[1]+`"`), &h); err != nil || h.String() != nix32 {
		t.Errorf("UnmarshalText: %v %v", h, err)
	}
	if b, _ := json.Marshal(h); string(b) != `"`+nix32+`"` {
		t.Errorf("MarshalText: %s", b)
	}
}

func TestStructuredHash(t *testing.T) {
	const want = "sha256:1nnw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7l"
	good := []string{
		`{"algorithm":"sha256","format":"base64","hash":"9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="}`,
		`{"algorithm":"sha256","format":"nix32","hash":"1nnw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7l"}`,
		`{"algorithm":"sha256","format":"base32","hash":"1nnw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7l"}`,
		`{"algorithm":"sha256","format":"base16","hash":"f46c1a0ba3113a3dd19a8a052a38c9795691b8a97e74d9842942c85c9014dcda"}`,
		`{"algorithm":"sha256","format":"sri","hash":"sha256-9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="}`,
		`"sha256-9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="`,
	}
	for _, g := range good {
		h, err := decodeNarHash(json.RawMessage(g))
		if err != nil || h.String() != want {
			t.Errorf("decodeNarHash(%s) = %s, %v", g, h, err)
		}
	}
	bad := []string{
		`{"algorithm":"sha256","format":"base16","hash":"9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="}`,
		`{"algorithm":"sha1","format":"base64","hash":"9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="}`,
		`{"algorithm":"sha256","format":"base64"}`,
		`{"algorithm":"sha256","format":"base64","hash":"9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No=","extra":1}`,
		`42`, `null`, `[]`,
	}
	for _, b := range bad {
		if h, err := decodeNarHash(json.RawMessage(b)); err == nil {
			t.Errorf("decodeNarHash(%s) accepted: %s", b, h)
		}
	}
}

func TestContentAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"fixed:r:sha256:1i0xww8znqa2wqbggkmgxy6was90nqc60b4wpv4hvwv1460id9dl"`, "fixed:r:sha256:1i0xww8znqa2wqbggkmgxy6was90nqc60b4wpv4hvwv1460id9dl"},
		{`{"method":"nar","hash":"sha256-tKUWgSFh8w3JvpwsYBi2IGnFje+vzvcW5kJh+xHnHcQ="}`, "fixed:r:sha256:1i0xww8znqa2wqbggkmgxy6was90nqc60b4wpv4hvwv1460id9dl"},
		{`{"method":"flat","hash":{"algorithm":"sha256","format":"base64","hash":"tKUWgSFh8w3JvpwsYBi2IGnFje+vzvcW5kJh+xHnHcQ="}}`, "fixed:sha256:1i0xww8znqa2wqbggkmgxy6was90nqc60b4wpv4hvwv1460id9dl"},
		{`{"method":"text","hash":"sha256-tKUWgSFh8w3JvpwsYBi2IGnFje+vzvcW5kJh+xHnHcQ="}`, "text:sha256:1i0xww8znqa2wqbggkmgxy6was90nqc60b4wpv4hvwv1460id9dl"},
		{`{"method":"git","hash":{"algorithm":"sha1","format":"base16","hash":"0123456789abcdef0123456789abcdef01234567"}}`, "fixed:git:sha1:cx2j60ggrnmqjrs54c0yzkdbi5kla8q1"},
		{`{"method":"flat","hash":"sha512-` + strings.Repeat("A", 86) + `=="}`, "fixed:sha512:" + strings.Repeat("0", 103)},
	}
	for _, tc := range tests {
		got, err := decodeCA(json.RawMessage(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("decodeCA(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
