package notes

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

// canon is a value in the form the differential tests compare:
// ["str", "x"], ["int", "8"], ["seq", [...]], ["map", [[k, v], ...]],
// ["date"], ["null"], ["error"].
func canon(v *yvalue) any {
	if v == nil {
		return []any{"null"}
	}
	switch v.kind {
	case yNull:
		return []any{"null"}
	case yBool:
		return []any{"bool", v.s}
	case yInt:
		return []any{"int", v.s}
	case yFloat:
		return []any{"float", v.s}
	case yStr:
		return []any{"str", v.s}
	case yDate:
		return []any{"date"}
	case ySeq:
		items := []any{}
		for _, it := range v.items {
			items = append(items, canon(it))
		}
		return []any{"seq", items}
	}
	pairs := []any{}
	for _, p := range v.pairs {
		pairs = append(pairs, []any{canon(p.key), canon(p.val)})
	}
	return []any{"map", pairs}
}

func canonJSON(t *testing.T, src string) string {
	t.Helper()
	v, err := parseYAML(src)
	if err != nil {
		return `["error"]`
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if jerr := enc.Encode(canon(v)); jerr != nil {
		t.Fatal(jerr)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// TestYAMLTypes pins PyYAML's YAML 1.1 typing of the scalars that differ
// from YAML 1.2 and from gopkg.in/yaml.v2 (checked against PyYAML 6).
func TestYAMLTypes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a: 123", `["map",[[["str","a"],["int","123"]]]]`},
		{"a: '123'", `["map",[[["str","a"],["str","123"]]]]`},
		{"a: 010", `["map",[[["str","a"],["int","8"]]]]`},
		{"a: 0o17", `["map",[[["str","a"],["str","0o17"]]]]`},
		{"a: 0x1F", `["map",[[["str","a"],["int","31"]]]]`},
		{"a: 0b101", `["map",[[["str","a"],["int","5"]]]]`},
		{"a: 1_000", `["map",[[["str","a"],["int","1000"]]]]`},
		{"a: 1:30", `["map",[[["str","a"],["int","90"]]]]`},
		{"a: 12:30:00", `["map",[[["str","a"],["int","45000"]]]]`},
		{"a: 08", `["map",[[["str","a"],["str","08"]]]]`},
		{"a: +1", `["map",[[["str","a"],["int","1"]]]]`},
		{"a: -0", `["map",[[["str","a"],["int","0"]]]]`},
		{"a: 99999999999999999999999", `["map",[[["str","a"],["int","99999999999999999999999"]]]]`},
		{"a: 1e5", `["map",[[["str","a"],["str","1e5"]]]]`},
		{"a: 1.0e+5", `["map",[[["str","a"],["float","100000.0"]]]]`},
		{"a: 1.", `["map",[[["str","a"],["float","1.0"]]]]`},
		{"a: 1_0.5", `["map",[[["str","a"],["float","10.5"]]]]`},
		{"a: .inf", `["map",[[["str","a"],["float","inf"]]]]`},
		{"a: -.INF", `["map",[[["str","a"],["float","-inf"]]]]`},
		{"a: .NaN", `["map",[[["str","a"],["float","nan"]]]]`},
		{"a: 1e400.0", `["map",[[["str","a"],["str","1e400.0"]]]]`},
		{"a: yes", `["map",[[["str","a"],["bool","True"]]]]`},
		{"a: Off", `["map",[[["str","a"],["bool","False"]]]]`},
		{"a: y", `["map",[[["str","a"],["str","y"]]]]`},
		{"a: n", `["map",[[["str","a"],["str","n"]]]]`},
		{"a: oN", `["map",[[["str","a"],["str","oN"]]]]`},
		{"a: ~", `["map",[[["str","a"],["null"]]]]`},
		{"a:", `["map",[[["str","a"],["null"]]]]`},
		{"a: NULL", `["map",[[["str","a"],["null"]]]]`},
		{"a: 2025-01-01", `["map",[[["str","a"],["date"]]]]`},
		{"a: 2025-1-1 1:02:03", `["map",[[["str","a"],["date"]]]]`},
		{"a: 2025-13-45", `["error"]`},
		{"a: =", `["error"]`},
		{"=: 3", `["map",[[["str","="],["int","3"]]]]`},
		{"a: 0b_", `["error"]`},
		{"a: ! 123", `["map",[[["str","a"],["int","123"]]]]`},
		{"a: !!str 123", `["map",[[["str","a"],["str","123"]]]]`},
		{"a: !!int '12'", `["map",[[["str","a"],["int","12"]]]]`},
		{"a: !foo x", `["error"]`},
		{"a: 1\na: 2", `["map",[[["str","a"],["int","2"]]]]`},
		{"<<: {b: 1}\na: 2", `["map",[[["str","b"],["int","1"]],[["str","a"],["int","2"]]]]`},
		{"x: &x {b: 1, c: 2}\ny:\n  <<: *x\n  c: 3", `["map",[[["str","x"],["map",[[["str","b"],["int","1"]],[["str","c"],["int","2"]]]]],[["str","y"],["map",[[["str","b"],["int","1"]],[["str","c"],["int","3"]]]]]]]`},
		{"? [a]\n: 1", `["error"]`},
		{"a: [*x]", `["error"]`},
		{"---\na: 1\n---\nb: 2", `["error"]`},
		{"a:\n\t- 1", `["error"]`},
		{"a: \t1", `["map",[[["str","a"],["int","1"]]]]`},
		{"", `["null"]`},
		{"# only a comment\n", `["null"]`},
		{"a: |\n  x\n  y\n", `["map",[[["str","a"],["str","x\ny\n"]]]]`},
		{"a: >-\n  x\n  y\n", `["map",[[["str","a"],["str","x y"]]]]`},
		{"issues: [fj#1, 2]", `["map",[[["str","issues"],["seq",[["str","fj#1"],["int","2"]]]]]]`},
		{"a: 1\r\nb: 2\r\n", `["map",[[["str","a"],["int","1"]],[["str","b"],["int","2"]]]]`},
	} {
		if got := canonJSON(t, c.in); got != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// yamlCorpus are front matters for the differential test against PyYAML.
var yamlCorpus = []string{
	"synopsis: x", "synopsis: 'x'", `synopsis: "x\ty"`, "synopsis:", "synopsis: ~", "synopsis: null",
	"synopsis: 123", "synopsis: 010", "synopsis: 0o10", "synopsis: 0x_1", "synopsis: 0x", "synopsis: 0b", "synopsis: 1__0",
	"synopsis: 1:30", "synopsis: 1:60", "synopsis: 1:3:5", "synopsis: 1:30.5", "synopsis: -1:30", "synopsis: 0:30",
	"synopsis: 1.5", "synopsis: .5", "synopsis: ._5", "synopsis: 5.", "synopsis: 1e3", "synopsis: 1.0e3", "synopsis: 1.0e-3",
	"synopsis: 1.0E+3", "synopsis: +.inf", "synopsis: .Inf", "synopsis: .nan", "synopsis: -.nan", "synopsis: 1_000.000_1",
	"synopsis: 123456789012345678.0", "synopsis: 0.0001", "synopsis: 0.00001", "synopsis: 1e16.0",
	"synopsis: yes", "synopsis: Yes", "synopsis: YES", "synopsis: yEs", "synopsis: y", "synopsis: Y", "synopsis: no", "synopsis: n",
	"synopsis: true", "synopsis: TRUE", "synopsis: on", "synopsis: off", "synopsis: OFF",
	"synopsis: 2025-01-01", "synopsis: 2025-01-01T10:00:00Z", "synopsis: 2025-01-01 10:00:00 +02:00",
	"synopsis: 2025-01-01t1:00:00.5", "synopsis: 2025-02-30", "synopsis: 2025-1-1",
	"synopsis: '2025-01-01'", "synopsis: <<", "synopsis: =", "synopsis: '='", "synopsis: ! x", "synopsis: ! 12",
	"synopsis: !!str 12", "synopsis: !!int 12", "synopsis: !!float 12", "synopsis: !!bool yes", "synopsis: !!null x",
	"synopsis: x # comment", "synopsis: x#y", "synopsis: 'it''s'", `synopsis: "a\"b"`, `synopsis: "\u00e9\x41"`,
	"synopsis: café", "synopsis: a: b", "synopsis: [a, b]", "synopsis: {a: b}", "synopsis: -", "synopsis: - a",
	"synopsis: |\n  line one\n  line two", "synopsis: >\n  folded\n  text\n\n  para", "synopsis: |-\n  x\n", "synopsis: |+\n  x\n\n",
	"synopsis: plain\n  continued\n  lines", "synopsis: 'single\n  quoted'", "synopsis: \"double\n\n  quoted\"",
	"issues: [fj#1, gh#2, 3, nix#04]", "issues: fj#1", "issues: [1, 2, 3]", "issues: []", "issues:\n  - fj#1\n  - 2",
	"issues:\n- fj#1\n- 2", "issues: [fj#1,2]", "cls: [1234, '0012', 0012]", "cls: 2365", "credits: [a, 'b', \"c\"]",
	"credits: jade", "credits:\n  - jade\n  - horrors", "a: &x 1\nb: *x", "a: &x [1, 2]\nb: *x", "a: &x {c: 1}\nb:\n  <<: *x\n  d: 2",
	"a: &x {c: 1}\nb: &y {d: 2}\ne:\n  <<: [*x, *y]\n  c: 3", "a: {c: 1}\nb:\n  <<: [1]", "<<: 1", "'<<': 1", "? a\n: b",
	"? |\n  block key\n: v", "a: b\n...\n", "%YAML 1.1\n---\na: 1", "a: 1\n--- \nb: 2", "[a, b]", "just text", "- a\n- b",
	"a: b\n  c: d", "a:\n  - b\n - c", "a: 'unclosed", "a: \"bad \\q escape\"", "a: [1, 2", "a: {b", "\ta: 1", "a:\n\tb: 1",
	"a: 1\nb:\t2", "a: @x", "a: `x`", "a: %x", "a: x\n# comment\nb: y", "a: |\n\tx", "key with spaces: 1", "1: a", "null: a",
	"yes: a", "1.5: x", "2025-01-01: x", "~: x", "a: !!binary aGVsbG8=", "a: !!set {x}", "a: !!omap [a: 1]", "a: !!seq [1]",
	"a: !!map {b: 1}", "a: !<tag:yaml.org,2002:str> 12", "a: \u2028b", "a: b\u0085c", "a: \x7f", "a: \x01",
	"synopsis: x\nsynopsis: y", "a:\n  b:\n    c: [1, {d: e}]", "a: [b, [c, [d]]]", "a: {b: [c, {d: [e]}]}",
	"a: b\r\nc: d", "a: b\rc: d", "a: \"x\\\r\n  y\"", "\ufeffa: 1", "a: \ufeffx",
}

// pyScript loads each document of a JSON list as python-frontmatter does
// (PyYAML's CSafeLoader, else SafeLoader) and prints the canonical forms.
const pyScript = `
import sys, json, datetime, yaml
L = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
def canon(v):
    if v is None: return ["null"]
    if isinstance(v, bool): return ["bool", str(v)]
    if isinstance(v, int): return ["int", str(v)]
    if isinstance(v, float): return ["float", repr(v)]
    if isinstance(v, str): return ["str", v]
    if isinstance(v, (datetime.date, datetime.datetime)): return ["date"]
    if isinstance(v, list): return ["seq", [canon(x) for x in v]]
    if isinstance(v, dict): return ["map", [[canon(k), canon(x)] for k, x in v.items()]]
    return ["other", type(v).__name__]
out = []
for doc in json.load(sys.stdin):
    try:
        out.append(json.dumps(canon(yaml.load(doc, Loader=L)), separators=(",", ":"), ensure_ascii=False))
    except Exception:
        out.append('["error"]')
json.dump(out, sys.stdout)
`

// knownDifferences are inputs where releng deliberately differs from
// PyYAML (documented in docs/notes.md): tags the safe loader constructs
// into types a fragment never uses are refused.
var knownDifferences = map[string]bool{
	"a: !!binary aGVsbG8=": true, "a: !!set {x}": true, "a: !!omap [a: 1]": true,
}

// TestPyYAMLDifferential compares the typing of every corpus document, and
// of the front matter of every fixture fragment, with PyYAML itself.
func TestPyYAMLDifferential(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-yaml")
	if err := exec.Command(py, "-c", "import yaml").Run(); err != nil {
		testenv.Missing(t, "PyYAML", "apt-get install -y python3-yaml (or pip install pyyaml)")
	}
	docs := append([]string{}, yamlCorpus...)
	frags, _ := filepath.Glob("testdata/fixtures/*/input/doc/manual/rl-next/*.md")
	for _, p := range frags {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		open, _ := boundaryAt(text, 0)
		rest := text[open:]
		if i := strings.Index(rest, "\n---"); i >= 0 {
			docs = append(docs, rest[:i+1])
		}
	}
	authors, _ := filepath.Glob("testdata/fixtures/*/input/doc/manual/change-authors.yml")
	for _, p := range authors {
		data, _ := os.ReadFile(p)
		docs = append(docs, string(data))
	}
	in, _ := json.Marshal(docs)
	cmd := exec.Command(py, "-c", pyScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var want []string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, doc := range docs {
		got := canonJSON(t, doc)
		if got != want[i] && !knownDifferences[doc] {
			t.Errorf("%q:\n releng %s\n PyYAML %s", doc, got, want[i])
		}
	}
	t.Logf("%d documents compared with PyYAML", len(docs))
}
