package notes

import (
	"strings"
	"unicode/utf8"
)

// Lix's renderer is Python; these helpers reproduce the Python string
// semantics its output depends on, rune for rune.

// pyIsSpace reports whether Python's str.isspace() holds for r (the set
// str.strip() removes): ASCII whitespace, the information separators
// U+001C–U+001F, U+0085, U+00A0 and the Unicode space separators.
func pyIsSpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1c && r <= 0x20:
		return true
	case r < 0x85:
		return false
	}
	switch r {
	case 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// pyStrip is Python's str.strip() with no argument.
func pyStrip(s string) string { return pyRStrip(pyLStrip(s)) }

// pyLStrip is Python's str.lstrip().
func pyLStrip(s string) string { return strings.TrimLeftFunc(s, pyIsSpace) }

// pyRStrip is Python's str.rstrip().
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// pyIsBlank is Python's `not s.strip()`: empty or whitespace only.
func pyIsBlank(s string) bool { return pyStrip(s) == "" }

// lineBreakLen returns the length of the line boundary str.splitlines()
// sees at s[i:], or 0: \n, \r, \r\n, \v, \f, \x1c, \x1d, \x1e, U+0085,
// U+2028 and U+2029.
func lineBreakLen(s string, i int) int {
	switch c := s[i]; c {
	case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e:
		return 1
	case '\r':
		if i+1 < len(s) && s[i+1] == '\n' {
			return 2
		}
		return 1
	case 0xc2:
		if i+1 < len(s) && s[i+1] == 0x85 {
			return 2
		}
	case 0xe2:
		if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
			return 3
		}
	}
	return 0
}

// pySplitLines is Python's str.splitlines(keepends).
func pySplitLines(s string, keepends bool) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); {
		n := lineBreakLen(s, i)
		if n == 0 {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			continue
		}
		if keepends {
			lines = append(lines, s[start:i+n])
		} else {
			lines = append(lines, s[start:i])
		}
		i += n
		start = i
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

// pyIndent is Python's textwrap.indent(text, prefix): prefix every line
// (as str.splitlines cuts them) that is not whitespace only.
func pyIndent(text, prefix string) string {
	var b strings.Builder
	b.Grow(len(text) + len(text)/16*len(prefix) + len(prefix))
	for _, line := range pySplitLines(text, true) {
		if !pyIsBlank(line) {
			b.WriteString(prefix)
		}
		b.WriteString(line)
	}
	return b.String()
}

// universalNewlines is what Python's text-mode reading does to a file:
// \r\n and lone \r become \n.
func universalNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}
