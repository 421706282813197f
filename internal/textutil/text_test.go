package textutil

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     string // "" when the text is fine
	}{
		{"plain", "Bici Bici", ""},
		{"empty", "", ""},
		{"accents and CJK", "Émile 夏", ""},
		{"emoji ZWJ sequence", "👩\u200d💻", ""},
		{"ZWNJ (Persian)", "می\u200cخواهم", ""},
		{"variation selector", "❤\ufe0f", ""},
		{"newline", "Bici\nBici", "U+000A (line feed) at character 5 (byte offset 4)"},
		{"carriage return", "a\r", "U+000D (carriage return) at character 2"},
		{"tab", "a\tb", "U+0009 (tab)"},
		{"NUL", "\x00", "U+0000 (NUL) at character 1 (byte offset 0)"},
		{"escape", "\x1b[31mred", "U+001B (escape)"},
		{"DEL", "a\x7f", "U+007F (delete)"},
		{"C1 next line", "a\u0085", "U+0085 (next line)"},
		{"C1 CSI", "\u009b", "U+009B (a control character)"},
		{"RLO", "abc\u202Etxt.exe", "U+202E (right-to-left override, a bidirectional control) at character 4 (byte offset 3)"},
		{"LRE", "\u202A", "U+202A (left-to-right embedding"},
		{"PDF", "\u202C", "U+202C (pop directional formatting"},
		{"isolate", "x\u2066", "U+2066 (left-to-right isolate"},
		{"pop isolate", "\u2069", "U+2069 (pop directional isolate"},
		{"LRM", "\u200E", "U+200E (left-to-right mark"},
		{"RLM", "\u200F", "U+200F (right-to-left mark"},
		{"ALM", "\u061C", "U+061C (Arabic letter mark"},
		{"ZWSP", "a\u200Bb", "U+200B (zero width space)"},
		{"BOM inside", "\uFEFFname", "U+FEFF (byte order mark) at character 1"},
		{"line separator", "a\u2028", "U+2028 (line separator)"},
		{"paragraph separator", "a\u2029", "U+2029 (paragraph separator)"},
		{"soft hyphen", "a\u00ADb", "U+00AD (soft hyphen)"},
		{"tag character", "a\U000E0041", "U+E0041 (an invisible format character)"},
		{"replacement character", "a\uFFFD", "U+FFFD (replacement character"},
		{"invalid byte", "Bici \xff", "not valid UTF-8: byte 0xFF at character 6 (byte offset 5)"},
		{"truncated sequence", "é\xe2\x80", "byte 0xE2 at character 2 (byte offset 2)"},
		{"overlong", "\xc0\xaf", "byte 0xC0 at character 1"},
		{"surrogate", "\xed\xa0\x80", "byte 0xED"},
		{"offset counts runes", "ééé\n", "at character 4 (byte offset 6)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckText(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckText(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var te *TextError
			if !errors.As(err, &te) {
				t.Fatalf("CheckText(%q) = %v, want a *TextError", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckText(%q) = %q, want it to contain %q", tt.in, err, tt.want)
			}
			// The message never carries the bad bytes themselves.
			if bad := CheckText(err.Error()); bad != nil {
				t.Errorf("message %q itself %v", err, bad)
			}
		})
	}
}
