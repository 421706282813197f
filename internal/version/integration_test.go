package version

// Differential tests against the real tools: Python's packaging and Nix's
// nix-instantiate. Each tool runs once, on all the generated cases.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const requireIntegrationEnv = "RELENG_REQUIRE_INTEGRATION"

// missingComponent skips the test because component is not installed, or
// fails it when RELENG_REQUIRE_INTEGRATION=1 says the tools must be there.
func missingComponent(t *testing.T, component, detail string) {
	t.Helper()
	if os.Getenv(requireIntegrationEnv) == "1" {
		t.Fatalf("%s is missing (%s), and %s=1 requires it", component, detail, requireIntegrationEnv)
	}
	t.Skipf("%s is missing (%s); set %s=1 to make this a failure", component, detail, requireIntegrationEnv)
}

// ---- Python packaging ----

// pythonPrelude imports Version from packaging, or from pip's vendored
// copy when the packaging module itself is not installed.
const pythonPrelude = `
import json, sys
try:
    import packaging as P
    from packaging.version import Version
except ImportError:
    import pip._vendor.packaging as P
    from pip._vendor.packaging.version import Version
`

// findPython returns a python3 that can import packaging (preferred) or
// pip._vendor.packaging, and a description of which.
func findPython(t *testing.T) (string, string) {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		candidates = append(candidates, "/usr/bin/python3")
	}
	if len(candidates) == 0 {
		missingComponent(t, "python3", "not on PATH nor at /usr/bin/python3")
	}
	var vendored, vendoredDesc string
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", pythonPrelude+`print(P.__name__, P.__version__)`).Output()
		if err != nil {
			continue
		}
		desc := py + ": " + strings.TrimSpace(string(out))
		if strings.HasPrefix(string(out), "packaging ") {
			return py, desc
		}
		if vendored == "" {
			vendored, vendoredDesc = py, desc
		}
	}
	if vendored == "" {
		missingComponent(t, "python3-packaging", "neither packaging nor pip._vendor.packaging imports in "+strings.Join(candidates, ", "))
	}
	return vendored, vendoredDesc
}

// pythonScript reads a JSON list of strings and prints, for each, null if
// packaging rejects it or its normalised form and is_prerelease, and for
// each valid one its rank in packaging's order (equal versions share a
// rank). Python's int() refuses more than 4300 digits; the script pins
// that default so the result does not depend on PYTHONINTMAXSTRDIGITS.
const pythonScript = pythonPrelude + `
limit = hasattr(sys, "set_int_max_str_digits")
if limit:
    sys.set_int_max_str_digits(4300)
strs = json.load(sys.stdin)
results, valid = [], []
for i, s in enumerate(strs):
    try:
        v = Version(s)
    except ValueError:  # InvalidVersion, or int() refusing too many digits
        results.append(None)
        continue
    results.append({"str": str(v), "pre": v.is_prerelease})
    valid.append((v, i))
rank = [None] * len(strs)
prev, r = None, -1
for v, i in sorted(valid, key=lambda p: p[0]):
    if prev is None or v != prev:
        r, prev = r + 1, v
    rank[i] = r
json.dump({"limit": limit, "results": results, "rank": rank}, sys.stdout)
`

type pythonVerdict struct {
	Limit   bool `json:"limit"`
	Results []*struct {
		Str string `json:"str"`
		Pre bool   `json:"pre"`
	} `json:"results"`
	Rank []*int `json:"rank"`
}

func TestPEP440AgainstPython(t *testing.T) {
	py, desc := findPython(t)
	t.Logf("using %s", desc)

	cases := pep440Cases()
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", pythonScript)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", py, err, stderr.String())
	}
	var verdict pythonVerdict
	if err := json.Unmarshal(out, &verdict); err != nil {
		t.Fatalf("decoding python's output: %v", err)
	}
	if len(verdict.Results) != len(cases) || len(verdict.Rank) != len(cases) {
		t.Fatalf("python answered %d results for %d cases", len(verdict.Results), len(cases))
	}

	parsed := make([]PEP440, len(cases))
	ok := make([]bool, len(cases))
	var nValid, nInvalid int
	for i, s := range cases {
		if !verdict.Limit && longestDigitRun(s) > maxDigits {
			continue // this Python has no digit limit to agree with
		}
		v, err := Parse(s)
		want := verdict.Results[i]
		switch {
		case want == nil && err == nil:
			t.Errorf("Parse(%q) = %q, but packaging rejects it", s, v)
		case want != nil && err != nil:
			t.Errorf("Parse(%q): %v, but packaging accepts it as %q", s, err, want.Str)
		case want == nil:
			nInvalid++
		default:
			nValid++
			parsed[i], ok[i] = v, true
			if got := v.String(); got != want.Str {
				t.Errorf("Parse(%q).String() = %q, packaging says %q", s, got, want.Str)
			}
			if got := v.IsPrerelease(); got != want.Pre {
				t.Errorf("Parse(%q).IsPrerelease() = %v, packaging says %v", s, got, want.Pre)
			}
		}
	}
	var nPairs int
	for i := range cases {
		for j := range cases {
			if !ok[i] || !ok[j] || verdict.Rank[i] == nil || verdict.Rank[j] == nil {
				continue
			}
			nPairs++
			want := cmpInt(*verdict.Rank[i], *verdict.Rank[j])
			if got := Compare(parsed[i], parsed[j]); got != want {
				t.Errorf("Compare(%q, %q) = %d, packaging says %d", cases[i], cases[j], got, want)
			}
		}
	}
	t.Logf("%d strings (%d valid, %d invalid), %d ordered pairs agree with packaging", len(cases), nValid, nInvalid, nPairs)
	if nValid < 300 || nInvalid < 50 {
		t.Errorf("generator too lopsided: %d valid, %d invalid", nValid, nInvalid)
	}
}

func longestDigitRun(s string) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if isASCIIDigit(s[i]) {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// pep440Cases returns the strings checked against packaging: every string
// of the table tests, edge cases, and 700 generated ones.
func pep440Cases() []string {
	var cases []string
	cases = append(cases, ordered...)
	cases = append(cases,
		"2.90.0-beta.1", "2.90.0-rc1", "2.90.0pre20240411", "2.96.0-dev", "2.93.0",
		"1.0a-", "1.0-", "1.0.", "1.0post_", "1.0-dev-", "1.0.dev-", "1.0rc1.post", "1.0 ", " 1.0", "1.0 a1",
		"1.0\u200b", "\u00851.0\u2029", "1.0\x1c", "1.0\r\n", "1.0\n\n", "1.0\x00",
		"1.0+\u212a", "1.0+\u017f", "1.0prev\u0131ew", "1.0PREV\u0130EW", "1.0+\u0130", "1.0po\u017ft1", "1.0PO\u017fT",
		"1.0pr\u00e9", "\u0661", "\uff11.0", "v", "V1", "vv1", "1!", "!1", "1!2!3", "1..0", ".1",
		"1.0+a..b", "1.0+a+b", "1.0+a_", "1.0+-a", "1.0+", "1.0a1b1", "1.0-1-2", "1.0dev1a1",
		"1.0.post1.post2", "1.0-r", "1.0r", "1.0.rev", "1.0-1.dev", "1.0a1-1", "1.0a-1", "1.0-a1",
		"1.0c", "1.0-C-", "1.0_preview_", "1.0_pre_view", "1.0alphabeta", "1.0b_2", "1.0rc-_1",
		strings.Repeat("1", maxDigits), strings.Repeat("1", maxDigits+1),
		"0!"+strings.Repeat("0", maxDigits), "1+"+strings.Repeat("0", maxDigits)+"1",
	)
	for _, tt := range []string{"2.93", " 2.93.1\n", "2.x", "two.three"} {
		cases = append(cases, tt)
	}
	r := rand.New(rand.NewPCG(440, 2025))
	for range 700 {
		cases = append(cases, genPEP440(r))
	}
	return cases
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

func genNumber(r *rand.Rand) string {
	switch r.IntN(10) {
	case 0:
		return "0"
	case 1:
		return strings.Repeat("0", 1+r.IntN(3)) + fmt.Sprint(r.IntN(100))
	case 2:
		var b strings.Builder
		b.WriteByte(byte('1' + r.IntN(9)))
		for range 15 + r.IntN(25) {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		return b.String()
	case 3:
		return fmt.Sprint(20240000 + r.IntN(10000))
	}
	return fmt.Sprint(r.IntN(15))
}

// genWord spells word in random case, sometimes with one of the non-ASCII
// letters Python's re.IGNORECASE matches.
func genWord(r *rand.Rand, word string) string {
	var b strings.Builder
	for _, c := range word {
		switch {
		case c == 'i' && chance(r, 0.1):
			b.WriteRune(pick(r, '\u0130', '\u0131'))
		case c == 'k' && chance(r, 0.2):
			b.WriteRune('\u212a')
		case c == 's' && chance(r, 0.1):
			b.WriteRune('\u017f')
		case chance(r, 0.3):
			b.WriteString(strings.ToUpper(string(c)))
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func genSep(r *rand.Rand) string { return pick(r, "", "", ".", "-", "_") }

func genPEP440(r *rand.Rand) string {
	var b strings.Builder
	if chance(r, 0.05) {
		b.WriteString(pick(r, " ", "\t", "\n", "\u00a0", "\u3000", "\x1d", "\u2028"))
	}
	if chance(r, 0.15) {
		b.WriteString(pick(r, "v", "V"))
	}
	if chance(r, 0.15) {
		b.WriteString(genNumber(r) + "!")
	}
	for i := range 1 + r.IntN(5) {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(genNumber(r))
	}
	if chance(r, 0.4) {
		b.WriteString(genSep(r))
		b.WriteString(genWord(r, pick(r, "a", "b", "c", "rc", "alpha", "beta", "pre", "preview")))
		b.WriteString(genSep(r))
		if chance(r, 0.7) {
			b.WriteString(genNumber(r))
		}
	}
	if chance(r, 0.3) {
		if chance(r, 0.3) {
			b.WriteString("-" + genNumber(r))
		} else {
			b.WriteString(genSep(r))
			b.WriteString(genWord(r, pick(r, "post", "rev", "r")))
			b.WriteString(genSep(r))
			if chance(r, 0.7) {
				b.WriteString(genNumber(r))
			}
		}
	}
	if chance(r, 0.3) {
		b.WriteString(genSep(r))
		b.WriteString(genWord(r, "dev"))
		b.WriteString(genSep(r))
		if chance(r, 0.7) {
			b.WriteString(genNumber(r))
		}
	}
	if chance(r, 0.3) {
		b.WriteByte('+')
		for i := range 1 + r.IntN(4) {
			if i > 0 {
				b.WriteString(pick(r, ".", "-", "_"))
			}
			if chance(r, 0.4) {
				b.WriteString(genNumber(r))
			} else {
				b.WriteString(genWord(r, pick(r, "abc", "ubuntu", "git", "deadbeef", "kiwi", "x", "sid", "z9", "1a")))
			}
		}
	}
	if chance(r, 0.05) {
		b.WriteString(pick(r, " ", "\r\n", "\u2003", "\x1f"))
	}
	s := b.String()
	if chance(r, 0.3) {
		s = mutate(r, s)
	}
	return s
}

// mutate damages s by one rune-level edit, usually making it invalid.
func mutate(r *rand.Rand, s string) string {
	rs := []rune(s)
	i := r.IntN(len(rs) + 1)
	switch r.IntN(4) {
	case 0: // insert
		ins := pick(r, '.', '-', '_', '+', '!', 'a', 'x', '1', ' ', '\u00e9', 'v', '~')
		rs = append(rs[:i], append([]rune{ins}, rs[i:]...)...)
	case 1: // delete
		if i < len(rs) {
			rs = append(rs[:i], rs[i+1:]...)
		}
	case 2: // truncate
		rs = rs[:i]
	case 3: // append a trailing separator or a repeated segment
		return s + pick(r, "-", ".", "_", "+", "!", ".post1", ".dev1", "a1", "+x")
	}
	return string(rs)
}

// ---- Nix ----

// nixString quotes s as a Nix string literal: \ " and $ (so "${" cannot
// start an interpolation) are escaped, and so are newline, CR and tab.
func nixString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '\\', '"', '$':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestNixAgainstNixInstantiate(t *testing.T) {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/nix-instantiate"); serr != nil {
			missingComponent(t, "nix-instantiate", "not on PATH nor at /usr/bin/nix-instantiate")
		}
		nix = "/usr/bin/nix-instantiate"
	}
	pairs, names := nixCases()

	var expr strings.Builder
	expr.WriteString("[ [\n")
	for _, p := range pairs {
		fmt.Fprintf(&expr, "(builtins.compareVersions %s %s)\n", nixString(p[0]), nixString(p[1]))
	}
	expr.WriteString("] [\n")
	for _, n := range names {
		fmt.Fprintf(&expr, "(builtins.parseDrvName %s)\n", nixString(n))
	}
	expr.WriteString("] ]\n")

	confDir := t.TempDir()
	conf := "sandbox = false\nbuild-users-group =\nsubstituters =\nexperimental-features = nix-command flakes\n"
	if err := os.WriteFile(filepath.Join(confDir, "nix.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nix, "--eval", "--strict", "--json", "-E", expr.String())
	cmd.Env = append(os.Environ(), "NIX_CONF_DIR="+confDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --eval: %v\n%s", nix, err, stderr.String())
	}
	var result struct {
		compares []int
		names    []struct{ Name, Version string }
	}
	var raw [2]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("decoding nix's output: %v\n%s", err, out)
	}
	if err := json.Unmarshal(raw[0], &result.compares); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw[1], &result.names); err != nil {
		t.Fatal(err)
	}
	if len(result.compares) != len(pairs) || len(result.names) != len(names) {
		t.Fatalf("nix answered %d comparisons and %d names for %d and %d", len(result.compares), len(result.names), len(pairs), len(names))
	}
	outcomes := map[int]int{}
	for i, p := range pairs {
		want := result.compares[i]
		outcomes[want]++
		if got := CompareNix(p[0], p[1]); got != want {
			t.Errorf("CompareNix(%q, %q) = %d, builtins.compareVersions says %d", p[0], p[1], got, want)
		}
	}
	for i, n := range names {
		want := result.names[i]
		if name, version := ParseDrvName(n); name != want.Name || version != want.Version {
			t.Errorf("ParseDrvName(%q) = %q, %q; builtins.parseDrvName says %q, %q", n, name, version, want.Name, want.Version)
		}
	}
	t.Logf("%d comparisons (%d <, %d =, %d >) and %d names agree with %s", len(pairs), outcomes[-1], outcomes[0], outcomes[1], len(names), nix)
}

// nixCases returns the version pairs and store names checked against Nix:
// every table test, and generated ones.
func nixCases() (pairs [][2]string, names []string) {
	for _, tt := range nixCompareTests {
		pairs = append(pairs, [2]string{tt.a, tt.b})
	}
	for _, tt := range drvNameTests {
		names = append(names, tt.in)
	}
	r := rand.New(rand.NewPCG(28, 2022))
	for range 400 {
		a := genNixVersion(r)
		var b string
		switch r.IntN(4) {
		case 0:
			b = genNixVersion(r)
		case 1:
			b = a
		default:
			b = mutateNix(r, a)
		}
		pairs = append(pairs, [2]string{a, b})
	}
	for range 300 {
		names = append(names, genDrvName(r))
	}
	return pairs, names
}

func genNixComponent(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0, 1:
		return fmt.Sprint(r.IntN(12))
	case 2:
		return pick(r, "pre", "pre", "rc", "alpha", "a", "b", "beta", "git", "unstable", "dev", "B", "Z", "\u00e9", "_", "+", "~", "p")
	case 3:
		return pick(r, "0", "00", "007", "2147483647", "2147483648", "02147483647", "4294967296",
			"9223372036854775807", "9223372036854775808", "18446744073709551616", "99999999999999999999999")
	case 4:
		return fmt.Sprint(20200000 + r.IntN(60000))
	}
	return pick(r, "", "a", "pre")
}

func genNixVersion(r *rand.Rand) string {
	var b strings.Builder
	if chance(r, 0.05) {
		b.WriteString(pick(r, ".", "-"))
	}
	for i := range 1 + r.IntN(5) {
		if i > 0 {
			b.WriteString(pick(r, ".", ".", "-", "", "..", "-."))
		}
		b.WriteString(genNixComponent(r))
	}
	if chance(r, 0.05) {
		b.WriteString(pick(r, ".", "-"))
	}
	return b.String()
}

// mutateNix changes a version a little so that comparisons go deep.
func mutateNix(r *rand.Rand, s string) string {
	switch r.IntN(5) {
	case 0:
		return s + pick(r, ".", "-", ".0", "pre", "pre1", "rc1", ".1", "a", "-2147483648")
	case 1:
		if i := strings.LastIndexAny(s, ".-"); i >= 0 {
			return s[:i]
		}
		return s + ".0"
	case 2:
		return strings.Replace(s, pick(r, ".", "-"), pick(r, "-", ".", ""), 1)
	case 3:
		return strings.Replace(s, "1", pick(r, "01", "2", "0", "2147483648"), 1)
	}
	return s + genNixComponent(r)
}

func genDrvName(r *rand.Rand) string {
	if chance(r, 0.2) {
		// Random strings over a small alphabet find the edge cases.
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteString(pick(r, "a", "B", "-", "-", "1", ".", "_", "\u00e9", "z"))
		}
		return b.String()
	}
	var b strings.Builder
	for i := range 1 + r.IntN(3) {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(pick(r, "hello", "lix", "perl5.36.0", "Test", "python3.11", "x", "gnu", "source", "unstable", "", "\u00e9t\u00e9", "foo_bar"))
	}
	if chance(r, 0.8) {
		b.WriteString("-")
		b.WriteString(pick(r, genNixVersion(r), "unstable-2024-01-01", "2.93.0", "-1", "_x", ".1", ""))
	}
	return b.String()
}
