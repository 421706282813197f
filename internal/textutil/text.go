package textutil

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// TextError says why a string is not one safe line of text: the first
// offending character, as U+XXXX (or the invalid byte, as 0xXX), never the
// raw bytes, so the message itself cannot carry what it reports.
type TextError struct {
	Rune    rune // the offending character; utf8.RuneError when Invalid
	Invalid bool // the string is not valid UTF-8 here
	Byte    byte // the first invalid byte, when Invalid
	Offset  int  // byte offset of the character in the string (0-based)
	Char    int  // character position (1-based, counted in runes)
}

func (e *TextError) Error() string {
	where := fmt.Sprintf("at character %d (byte offset %d)", e.Char, e.Offset)
	if e.Invalid {
		return fmt.Sprintf("is not valid UTF-8: byte 0x%02X %s; save the text as UTF-8", e.Byte, where)
	}
	return fmt.Sprintf("contains U+%04X (%s) %s; use one line of visible text", e.Rune, RuneName(e.Rune), where)
}

// CheckText reports the first character of s that has no place in a
// one-line string that ends up in a commit or tag message, a ref, a URL or
// a file name (release names, config values):
//
//   - bytes that are not valid UTF-8;
//   - control characters: C0 (U+0000–U+001F, tab and line feed included),
//     DEL (U+007F) and C1 (U+0080–U+009F);
//   - format characters (category Cf), which are invisible and can hide or
//     reorder text: the bidirectional controls (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069), zero width space U+200B, the byte
//     order mark U+FEFF, soft hyphen, word joiner, tag characters …, except
//     U+200C and U+200D (zero width non-joiner and joiner), which Persian,
//     Indic scripts and emoji sequences need;
//   - the line and paragraph separators U+2028 and U+2029;
//   - U+FFFD, the replacement character: what a decoder leaves in place of
//     bytes it could not read, so the text was already damaged.
//
// The error is a *TextError.
func CheckText(s string) error {
	char := 0
	for i, r := range s {
		char++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return &TextError{Rune: r, Invalid: true, Byte: s[i], Offset: i, Char: char}
			}
		}
		if UnsafeRune(r) {
			return &TextError{Rune: r, Offset: i, Char: char}
		}
	}
	return nil
}

// UnsafeRune reports whether CheckText refuses r (see there).
func UnsafeRune(r rune) bool {
	switch {
	case r == '\u200C' || r == '\u200D':
		return false
	case r == '\u2028' || r == '\u2029' || r == utf8.RuneError:
		return true
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

var runeNames = map[rune]string{
	'\t': "tab", '\n': "line feed", '\r': "carriage return", 0: "NUL",
	0x1B: "escape", 0x7F: "delete", 0x85: "next line",
	0x00AD: "soft hyphen",
	0x061C: "Arabic letter mark, a bidirectional control",
	0x200B: "zero width space",
	0x200E: "left-to-right mark, a bidirectional control",
	0x200F: "right-to-left mark, a bidirectional control",
	0x202A: "left-to-right embedding, a bidirectional control",
	0x202B: "right-to-left embedding, a bidirectional control",
	0x202C: "pop directional formatting, a bidirectional control",
	0x202D: "left-to-right override, a bidirectional control",
	0x202E: "right-to-left override, a bidirectional control",
	0x2066: "left-to-right isolate, a bidirectional control",
	0x2067: "right-to-left isolate, a bidirectional control",
	0x2068: "first strong isolate, a bidirectional control",
	0x2069: "pop directional isolate, a bidirectional control",
	0x2028: "line separator", 0x2029: "paragraph separator",
	0x2060: "word joiner",
	0xFEFF: "byte order mark",
	0xFFFD: "replacement character, left where text could not be decoded",
}

// RuneName is a short English name of r for error messages: the common
// control and format characters by name, others by their class.
func RuneName(r rune) string {
	if n, ok := runeNames[r]; ok {
		return n
	}
	switch {
	case unicode.IsControl(r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character"
	}
	return fmt.Sprintf("%q", r)
}
