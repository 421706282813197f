package version

import (
	"fmt"
	"regexp"
	"strings"
)

// PEP440 is a parsed PEP 440 version, as Python's packaging.version.Version
// holds it. The zero value is not a valid version; obtain one from Parse.
//
// Numbers are kept as decimal strings without leading zeros, so components
// of any length are represented exactly (Python's ints are unbounded too).
type PEP440 struct {
	epoch   string      // "0" when absent
	release []string    // at least one component
	pre     *letterPart // nil when absent
	post    *letterPart
	dev     *letterPart
	local   []localPart // nil when absent
}

// letterPart is a (letter, number) pair of a pre, post or dev segment, after
// packaging's normalisation of the letter (lower-cased, alpha→a, beta→b,
// c/pre/preview→rc, rev/r→post).
type letterPart struct {
	letter string
	num    string
}

// localPart is one dot-separated component of a local version label: a
// number when it is all digits, else a lower-cased string.
type localPart struct {
	isNum bool
	s     string // normalised number, or lower-cased text
}

// maxDigits is the longest run of digits Python (3.11 and later, by default)
// converts to int: longer runs make packaging raise ValueError, so they are
// invalid here too.
const maxDigits = 4300

// InvalidError reports a string that is not a PEP 440 version.
type InvalidError struct {
	Version string // the string given
	Reason  string // optional detail
}

func (e *InvalidError) Error() string {
	msg := fmt.Sprintf("invalid version %q", e.Version)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg + "; a PEP 440 version looks like [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local], e.g. 2.93.0, 2.90.0rc1, 2.90.0-beta.1, 2.96.0-dev"
}

// pep440Regexp is packaging's VERSION_PATTERN between ^\s* and \s*$, with
// Python's re.IGNORECASE | re.VERBOSE semantics spelled out: Go's regexp
// picks the same submatches as Python's backtracking engine (leftmost-first),
// but its case folding and \s differ, so both are written as explicit
// classes (see ci and pyWhitespace).
var pep440Regexp = regexp.MustCompile(`^` + pyWhitespace + `*` +
	ci("v") + `?` +
	`(?:` +
	`(?:(?P<epoch>[0-9]+)!)?` +
	`(?P<release>[0-9]+(?:\.[0-9]+)*)` +
	`(?P<pre>[-_.]?(?P<pre_l>` + ci("a") + `|` + ci("b") + `|` + ci("c") + `|` + ci("rc") + `|` +
	ci("alpha") + `|` + ci("beta") + `|` + ci("pre") + `|` + ci("preview") + `)[-_.]?(?P<pre_n>[0-9]+)?)?` +
	`(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>` + ci("post") + `|` + ci("rev") + `|` + ci("r") + `)[-_.]?(?P<post_n2>[0-9]+)?))?` +
	`(?P<dev>[-_.]?(?P<dev_l>` + ci("dev") + `)[-_.]?(?P<dev_n>[0-9]+)?)?` +
	`)` +
	`(?:\+(?P<local>` + localChar + `+(?:[-_.]` + localChar + `+)*))?` +
	pyWhitespace + `*$`)

// pyWhitespace is what Python's \s matches in a str pattern: Unicode
// whitespace plus the ASCII separators U+001C..U+001F (Go's \s is ASCII
// only, and unicode.IsSpace lacks U+001C..U+001F).
const pyWhitespace = `[\t\n\v\f\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]`

// localChar is [a-z0-9] under Python's re.IGNORECASE: the ASCII letters and
// digits plus U+0130 İ, U+0131 ı, U+017F ſ and U+212A K (Kelvin sign).
const localChar = `[a-zA-Z0-9\x{130}\x{131}\x{17f}\x{212a}]`

// ci spells a lower-case ASCII word as Python's re.IGNORECASE matches it:
// besides the two ASCII cases, i also matches İ and ı, k the Kelvin sign and
// s the long s.
func ci(word string) string {
	var b strings.Builder
	for _, r := range word {
		b.WriteByte('[')
		b.WriteRune(r)
		b.WriteRune(r - 'a' + 'A')
		switch r {
		case 'i':
			b.WriteString(`\x{130}\x{131}`)
		case 'k':
			b.WriteString(`\x{212a}`)
		case 's':
			b.WriteString(`\x{17f}`)
		}
		b.WriteByte(']')
	}
	return b.String()
}

var (
	idxEpoch   = pep440Regexp.SubexpIndex("epoch")
	idxRelease = pep440Regexp.SubexpIndex("release")
	idxPreL    = pep440Regexp.SubexpIndex("pre_l")
	idxPreN    = pep440Regexp.SubexpIndex("pre_n")
	idxPostN1  = pep440Regexp.SubexpIndex("post_n1")
	idxPostL   = pep440Regexp.SubexpIndex("post_l")
	idxPostN2  = pep440Regexp.SubexpIndex("post_n2")
	idxDevL    = pep440Regexp.SubexpIndex("dev_l")
	idxDevN    = pep440Regexp.SubexpIndex("dev_n")
	idxLocal   = pep440Regexp.SubexpIndex("local")
)

// Parse parses s as Python's packaging.version.Version(s) does: surrounding
// whitespace, a leading v, any case and all of PEP 440's alternative
// spellings are accepted. The error for an invalid s is an *InvalidError.
func Parse(s string) (PEP440, error) {
	m := pep440Regexp.FindStringSubmatchIndex(s)
	if m == nil {
		return PEP440{}, &InvalidError{Version: s}
	}
	group := func(i int) (string, bool) {
		if m[2*i] < 0 {
			return "", false
		}
		return s[m[2*i]:m[2*i+1]], true
	}
	var tooLong bool
	num := func(d string) string {
		if len(d) > maxDigits {
			tooLong = true
		}
		d = strings.TrimLeft(d, "0")
		if d == "" {
			return "0"
		}
		return d
	}

	var v PEP440
	v.epoch = "0"
	if e, ok := group(idxEpoch); ok {
		v.epoch = num(e)
	}
	rel, _ := group(idxRelease)
	for c := range strings.SplitSeq(rel, ".") {
		v.release = append(v.release, num(c))
	}

	// packaging's _parse_letter_version: a letter gets an implicit 0; a
	// number without a letter (1.0-1) is a post release.
	letterVersion := func(letter, number string, hasLetter, hasNumber bool) *letterPart {
		switch {
		case hasLetter:
			n := "0"
			if hasNumber {
				n = num(number)
			}
			return &letterPart{letter: normaliseLetter(pyLower(letter)), num: n}
		case hasNumber && number != "":
			return &letterPart{letter: "post", num: num(number)}
		}
		return nil
	}
	preL, hasPreL := group(idxPreL)
	preN, hasPreN := group(idxPreN)
	v.pre = letterVersion(preL, preN, hasPreL, hasPreN)

	postL, hasPostL := group(idxPostL)
	// match.group("post_n1") or match.group("post_n2"): post_n1 wins when
	// present (it is never empty).
	postN, hasPostN := group(idxPostN1)
	if !hasPostN {
		postN, hasPostN = group(idxPostN2)
	}
	v.post = letterVersion(postL, postN, hasPostL, hasPostN)

	devL, hasDevL := group(idxDevL)
	devN, hasDevN := group(idxDevN)
	v.dev = letterVersion(devL, devN, hasDevL, hasDevN)

	if l, ok := group(idxLocal); ok {
		for _, part := range strings.FieldsFunc(l, func(r rune) bool { return r == '.' || r == '-' || r == '_' }) {
			if isASCIIDigits(part) {
				v.local = append(v.local, localPart{isNum: true, s: num(part)})
			} else {
				v.local = append(v.local, localPart{s: pyLower(part)})
			}
		}
	}
	if tooLong {
		return PEP440{}, &InvalidError{Version: s, Reason: fmt.Sprintf("a number has more than %d digits", maxDigits)}
	}
	return v, nil
}

// normaliseLetter maps packaging's alternative spellings to the canonical
// ones. Spellings that matched only through Unicode case-insensitivity (for
// example "poſt") are not in packaging's table and stay as they are.
func normaliseLetter(l string) string {
	switch l {
	case "alpha":
		return "a"
	case "beta":
		return "b"
	case "c", "pre", "preview":
		return "rc"
	case "rev", "r":
		return "post"
	}
	return l
}

// pyLower is Python's str.lower() for the characters the version pattern
// can match: ASCII, U+0130 İ (which lowers to "i̇", two code points), U+0131
// ı and U+017F ſ (unchanged) and U+212A K (which lowers to k).
func pyLower(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		case r == '\u0130':
			b.WriteString("i\u0307")
		case r == '\u212a':
			b.WriteByte('k')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isASCIIDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsPrerelease reports whether v has a pre-release or a dev-release segment,
// as packaging's Version.is_prerelease.
func (v PEP440) IsPrerelease() bool {
	return v.pre != nil || v.dev != nil
}

// Compare returns -1, 0 or +1 as a sorts before, equal to or after b in
// packaging's order (Version._key): epoch; release with trailing zeros
// dropped; a dev release without pre or post before any pre-release, and
// pre-releases before the release; post releases after; dev releases before
// what they develop; a local version after the same public version, local
// labels compared part by part (strings before numbers, numbers numerically,
// a shorter label first).
func Compare(a, b PEP440) int {
	if c := cmpNum(a.epoch, b.epoch); c != 0 {
		return c
	}
	if c := cmpRelease(a.release, b.release); c != 0 {
		return c
	}
	if c := cmpKeyed(a.preKey(), b.preKey()); c != 0 {
		return c
	}
	if c := cmpKeyed(optional(a.post, negInf), optional(b.post, negInf)); c != 0 {
		return c
	}
	if c := cmpKeyed(optional(a.dev, posInf), optional(b.dev, posInf)); c != 0 {
		return c
	}
	return cmpLocal(a.local, b.local)
}

// keyed is one of the _cmpkey elements that packaging fills with Infinity or
// -Infinity when the segment is absent.
type keyed struct {
	inf  int // -1 for -Infinity, +1 for Infinity, 0 for a (letter, number) pair
	part letterPart
}

const (
	negInf = -1
	posInf = +1
)

func optional(p *letterPart, ifAbsent int) keyed {
	if p == nil {
		return keyed{inf: ifAbsent}
	}
	return keyed{part: *p}
}

// preKey is _cmpkey's _pre: -Infinity for a dev release with neither pre
// nor post segment (1.0.dev0 < 1.0a0), Infinity for no pre-release.
func (v PEP440) preKey() keyed {
	switch {
	case v.pre == nil && v.post == nil && v.dev != nil:
		return keyed{inf: negInf}
	case v.pre == nil:
		return keyed{inf: posInf}
	}
	return keyed{part: *v.pre}
}

func cmpKeyed(a, b keyed) int {
	if a.inf != 0 || b.inf != 0 {
		return cmpInt(a.inf, b.inf)
	}
	if c := strings.Compare(a.part.letter, b.part.letter); c != 0 {
		return c
	}
	return cmpNum(a.part.num, b.part.num)
}

// cmpRelease compares release tuples with their trailing zeros removed.
func cmpRelease(a, b []string) int {
	a, b = trimZeros(a), trimZeros(b)
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := cmpNum(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmpInt(len(a), len(b))
}

func trimZeros(r []string) []string {
	for len(r) > 0 && r[len(r)-1] == "0" {
		r = r[:len(r)-1]
	}
	return r
}

// cmpLocal compares local labels: absent before present; then part by
// part, a string part before a number part, strings by code point, numbers
// numerically; a label that is a prefix of the other first.
func cmpLocal(a, b []localPart) int {
	if a == nil || b == nil {
		return cmpInt(boolInt(a != nil), boolInt(b != nil))
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		switch {
		case x.isNum && y.isNum:
			if c := cmpNum(x.s, y.s); c != 0 {
				return c
			}
		case x.isNum != y.isNum:
			return cmpInt(boolInt(x.isNum), boolInt(y.isNum))
		default:
			if c := strings.Compare(x.s, y.s); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(a), len(b))
}

// cmpNum compares non-negative decimal numbers without leading zeros.
func cmpNum(a, b string) int {
	if c := cmpInt(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Major returns MAJOR as SPEC §1 defines it: the first two dot-separated
// components of the version string, as Lix's release scripts compute it
// ("2.93.0" → "2.93", "2.90.0-beta.1" → "2.90"). v must be a valid PEP 440
// version with at least one dot; surrounding whitespace is ignored.
func Major(v string) (string, error) {
	if _, err := Parse(v); err != nil {
		return "", err
	}
	s := strings.TrimFunc(v, isPyWhitespace)
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return "", &InvalidError{Version: v, Reason: "it has no second dot-separated component to form MAJOR (as in 2.93.0 → 2.93)"}
	}
	return parts[0] + "." + parts[1], nil
}

// isPyWhitespace reports whether r is in pyWhitespace.
func isPyWhitespace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1c && r <= 0x20, r == 0x85, r == 0xa0, r == 0x1680,
		r >= 0x2000 && r <= 0x200a, r == 0x2028, r == 0x2029, r == 0x202f, r == 0x205f, r == 0x3000:
		return true
	}
	return false
}
