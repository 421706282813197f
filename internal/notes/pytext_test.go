package notes

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

func TestPyText(t *testing.T) {
	for _, c := range []struct {
		in, strip, indent string
		lines             []string
	}{
		{"", "", "", nil},
		{"a", "a", "  a", []string{"a"}},
		{"a\n", "a", "  a\n", []string{"a\n"}},
		{"a\n\nb", "a\n\nb", "  a\n\n  b", []string{"a\n", "\n", "b"}},
		{"a\n   \nb", "a\n   \nb", "  a\n   \n  b", []string{"a\n", "   \n", "b"}},
		{"a\r\nb\rc", "a\r\nb\rc", "  a\r\n  b\r  c", []string{"a\r\n", "b\r", "c"}},
		{"a\x0cb", "a\x0cb", "  a\x0c  b", []string{"a\x0c", "b"}},
		{"a\u2028b\u0085c", "a\u2028b\u0085c", "  a\u2028  b\u0085  c", []string{"a\u2028", "b\u0085", "c"}},
		{"\u00a0x\u3000", "x", "  \u00a0x\u3000", []string{"\u00a0x\u3000"}},
		{"\x1fx\x1c", "x", "  \x1fx\x1c", []string{"\x1fx\x1c"}},
		{"\u200bx", "\u200bx", "  \u200bx", []string{"\u200bx"}},
		{"x\n\u00a0\n", "x", "  x\n\u00a0\n", []string{"x\n", "\u00a0\n"}},
	} {
		if got := pyStrip(c.in); got != c.strip {
			t.Errorf("pyStrip(%q) = %q, want %q", c.in, got, c.strip)
		}
		if got := pyIndent(c.in, "  "); got != c.indent {
			t.Errorf("pyIndent(%q) = %q, want %q", c.in, got, c.indent)
		}
		if got := pySplitLines(c.in, true); !reflect.DeepEqual(got, c.lines) {
			t.Errorf("pySplitLines(%q) = %q, want %q", c.in, got, c.lines)
		}
	}
}

func TestSplitFrontMatter(t *testing.T) {
	for _, c := range []struct {
		in       string
		status   int
		fm, body string
	}{
		{"---\na: 1\n---\nbody\n", splitOK, "\na: 1\n", "body"},
		{"\n\n  ---  \na: 1\n----\n\n body \n\n", splitOK, "\na: 1\n", "body"},
		{"---\n\t\na: 1\n---\n", splitOK, "\na: 1\n", ""},
		{"---\na: 1\n--- \t\nb\n---\nc", splitOK, "\na: 1\n", "b\n---\nc"},
		{"---\na: 1\n---", splitOK, "\na: 1\n", ""},
		{"---\na: 1\n", splitUnclosed, "", ""},
		{"---", splitUnclosed, "", ""},
		{"--\na: 1\n--\n", splitNoFrontMatter, "", ""},
		{"--- x\na: 1\n---\n", splitNoFrontMatter, "", ""},
		{"text\n---\na: 1\n---\n", splitNoFrontMatter, "", ""},
		{"---\ra: 1\r---\r", splitNoFrontMatter, "", ""},
		{" \n\t ", splitEmpty, "", ""},
	} {
		sp := splitFrontMatter(c.in)
		if sp.status != c.status {
			t.Errorf("%q: status %d, want %d", c.in, sp.status, c.status)
			continue
		}
		if sp.status == splitOK {
			if fm, body := c.in[sp.open:sp.closeStart], pyStrip(c.in[sp.closeEnd:sp.end]); fm != c.fm || body != c.body {
				t.Errorf("%q: front matter %q body %q, want %q %q", c.in, fm, body, c.fm, c.body)
			}
		}
	}
}

// pyTextScript runs the Python that Lix's renderer and python-frontmatter
// apply to text, for the differential test.
const pyTextScript = `
import sys, json, re, textwrap
FM = re.compile(r"^-{3,}\s*$", re.M)
texts = json.load(sys.stdin)
out = []
for s in texts:
    t = s.strip()
    sp = None
    if FM.match(t):
        try:
            _, fm, content = FM.split(t, 2)
            sp = [fm, content.strip()]
        except ValueError:
            pass
    lines = s.splitlines()
    out.append([t, s.rstrip(), s.splitlines(True), textwrap.indent(s, "  "), sp, "\n".join(lines[1:])])
json.dump(out, sys.stdout)
`

// pieces are what the random texts are made of: boundaries, Python
// whitespace and line breaks Go does not treat the same way, text.
var pieces = []string{"---", "----", "--", "-", " ", "\t", "\n", "\n", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f",
	"\u0085", "\u00a0", "\u2028", "\u2029", "\u3000", "\u200b", "\ufeff", "a", "b c", "synopsis: x", "é", "\n---\n", "#", ":"}

// TestPythonTextDifferential compares strip, splitlines, textwrap.indent,
// rstrip and the front-matter split on random texts with Python itself.
func TestPythonTextDifferential(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3")
	rng := rand.New(rand.NewSource(1))
	texts := []string{}
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		if i%2 == 0 {
			b.WriteString(pieces[rng.Intn(6)])
		}
		for n := rng.Intn(14); n >= 0; n-- {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		texts = append(texts, b.String())
	}
	in, _ := json.Marshal(texts)
	cmd := exec.Command(py, "-c", pyTextScript)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var want [][]any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, s := range texts {
		sp := splitFrontMatter(s)
		var gotSplit any
		if sp.status == splitOK {
			gotSplit = []any{s[sp.open:sp.closeStart], pyStrip(s[sp.closeEnd:sp.end])}
		}
		lines := pySplitLines(s, false)
		rest := ""
		if len(lines) > 1 {
			rest = strings.Join(lines[1:], "\n")
		}
		got := []any{pyStrip(s), pyRStrip(s), toAny(pySplitLines(s, true)), pyIndent(s, "  "), gotSplit, rest}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want[i])
		if !bytes.Equal(gj, wj) {
			t.Errorf("%q:\n got  %s\n want %s", s, gj, wj)
		}
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
