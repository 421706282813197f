package notes

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Lix reads front matter with python-frontmatter, which uses PyYAML's
// CSafeLoader: libyaml's parser with PyYAML's YAML 1.1 resolver and safe
// constructors. go.yaml.in/yaml/v3 is a Go port of libyaml and its Node API
// keeps what the resolver needs (scalar style, explicit tags, lines), so the
// parsing is libyaml's and the typing below is PyYAML's, rule for rule.

// ykind is the Python type a YAML node constructs to.
type ykind int

const (
	yNull ykind = iota
	yBool
	yInt
	yFloat
	yStr
	yDate
	ySeq
	yMap
)

// describe names the kind for messages ("a number", "a list", …).
func (k ykind) describe() string {
	switch k {
	case yNull:
		return "empty (YAML null)"
	case yBool:
		return "a YAML boolean"
	case yInt, yFloat:
		return "a YAML number"
	case yStr:
		return "text"
	case yDate:
		return "a YAML date"
	case ySeq:
		return "a list"
	}
	return "a mapping"
}

// yvalue is a constructed YAML value.
type yvalue struct {
	kind ykind
	// s is the text of a str; for other scalars, Python's str() of the value.
	s string
	// src is a scalar's text as written (unquoted).
	src string
	// line is the 1-based line of the node in the YAML text.
	line  int
	items []*yvalue // ySeq
	pairs []ypair   // yMap, in Python dict order (first position, last value)
	// dups are keys written twice in this mapping (PyYAML keeps the last).
	dups []ypair
}

type ypair struct{ key, val *yvalue }

// get returns the value of the str key k in a mapping.
func (v *yvalue) get(k string) (ypair, bool) {
	for _, p := range v.pairs {
		if p.key.kind == yStr && p.key.s == k {
			return p, true
		}
	}
	return ypair{}, false
}

// truthy is Python's bool() of a scalar value.
func (v *yvalue) truthy() bool {
	switch v.kind {
	case yNull:
		return false
	case yBool:
		return v.s == "True"
	case yInt:
		return v.s != "0"
	case yFloat:
		return v.s != "0.0" && v.s != "-0.0"
	case yStr:
		return v.s != ""
	case ySeq:
		return len(v.items) > 0
	case yMap:
		return len(v.pairs) > 0
	}
	return true
}

// yamlError is a YAML problem at a line of the YAML text (0: unknown). It
// is not an error value: the callers report line and msg as a [Problem].
type yamlError struct {
	line int
	msg  string
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): `)

// parseYAML reads one YAML document as PyYAML's safe loader would. An
// empty document is nil.
func parseYAML(src string) (v *yvalue, yerr *yamlError) {
	defer func() {
		if r := recover(); r != nil {
			v, yerr = nil, &yamlError{msg: fmt.Sprintf("the YAML parser failed on this text (%v)", r)}
		}
	}()
	dec := yaml.NewDecoder(strings.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, toYAMLError(err, src)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &yamlError{line: next.Line, msg: "a second YAML document starts here; front matter is one document (remove the `---` or `...` line)"}
	} else if !errors.Is(err, io.EOF) {
		return nil, toYAMLError(err, src)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	c := &yconv{memo: map[*yaml.Node]*yvalue{}, busy: map[*yaml.Node]bool{}, flat: map[*yaml.Node][]ypair{}, dups: map[*yaml.Node][]ypair{}}
	return c.conv(root)
}

// parserErrors are the messages of libyaml's parser (not scanner) errors:
// yaml.v3 reports their line 0-based.
var parserErrors = []string{"did not find expected", "found undefined tag handle", "found duplicate %", "found incompatible YAML document"}

// problemLine finds the line a parser error is about. yaml.v3 reports where
// the enclosing construct starts (a block mapping, a flow sequence); the
// first prefix of whole lines that fails with the same message ends at
// the offending line.
func problemLine(src, msg string, line int) int {
	lines := strings.SplitAfter(src, "\n")
	if len(lines) > 300 || len(src) > 64<<10 {
		return line
	}
	prefix := ""
	for k, l := range lines {
		prefix += l
		var n yaml.Node
		dec := yaml.NewDecoder(strings.NewReader(prefix))
		err := dec.Decode(&n)
		if err == nil {
			err = dec.Decode(&n)
		}
		if err != nil && !errors.Is(err, io.EOF) && strings.HasSuffix(err.Error(), msg) {
			return k + 1
		}
	}
	return line
}

var unknownAnchorRe = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

func toYAMLError(err error, src string) *yamlError {
	msg := err.Error()
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		for _, p := range parserErrors {
			if strings.HasPrefix(msg, p) {
				line = problemLine(src, msg, line+1)
			}
		}
	} else if m := unknownAnchorRe.FindStringSubmatch(msg); m != nil {
		if i := strings.Index(src, "*"+m[1]); i >= 0 {
			line = 1 + strings.Count(src[:i], "\n")
		}
		msg = fmt.Sprintf("alias *%s refers to no anchor &%s", m[1], m[1])
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return &yamlError{line: line, msg: "YAML: " + msg}
}

type yconv struct {
	memo map[*yaml.Node]*yvalue
	busy map[*yaml.Node]bool
	flat map[*yaml.Node][]ypair
	dups map[*yaml.Node][]ypair
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 1000; i++ {
		n = n.Alias
	}
	return n
}

func (c *yconv) conv(n *yaml.Node) (*yvalue, *yamlError) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, &yamlError{line: n.Line, msg: fmt.Sprintf("YAML: unknown alias *%s", n.Value)}
		}
		return c.conv(deref(n))
	}
	if v, ok := c.memo[n]; ok {
		return v, nil
	}
	if c.busy[n] {
		return nil, &yamlError{line: n.Line, msg: "YAML: an alias refers to a node that contains it"}
	}
	c.busy[n] = true
	defer delete(c.busy, n)
	var v *yvalue
	var err *yamlError
	switch n.Kind {
	case yaml.ScalarNode:
		v, err = scalar(n)
	case yaml.SequenceNode:
		if n.Style&yaml.TaggedStyle != 0 && n.Tag != "!!seq" {
			return nil, &yamlError{line: n.Line, msg: fmt.Sprintf("YAML: tag %s is not supported here", n.Tag)}
		}
		v = &yvalue{kind: ySeq, line: n.Line, items: make([]*yvalue, 0, len(n.Content))}
		for _, item := range n.Content {
			iv, ierr := c.conv(item)
			if ierr != nil {
				return nil, ierr
			}
			v.items = append(v.items, iv)
		}
	case yaml.MappingNode:
		if n.Style&yaml.TaggedStyle != 0 && n.Tag != "!!map" {
			return nil, &yamlError{line: n.Line, msg: fmt.Sprintf("YAML: tag %s is not supported here", n.Tag)}
		}
		v, err = c.mapping(n)
	default:
		return nil, &yamlError{line: n.Line, msg: "YAML: unexpected node"}
	}
	if err != nil {
		return nil, err
	}
	c.memo[n] = v
	return v, nil
}

// isMergeKey reports whether a key node is PyYAML's `<<` merge key.
func isMergeKey(k *yaml.Node) bool {
	if k.Kind != yaml.ScalarNode {
		return false
	}
	if k.Style&yaml.TaggedStyle != 0 {
		return k.Tag == "!!merge"
	}
	return k.Style == 0 && k.Value == "<<"
}

// mapping constructs a mapping as SafeConstructor does: merge keys
// (`<<: *a`, `<<: [*a, *b]`) flattened first, then the mapping's own pairs;
// a repeated key keeps its first position and its last value.
func (c *yconv) mapping(n *yaml.Node) (*yvalue, *yamlError) {
	pairs, err := c.flatten(n)
	if err != nil {
		return nil, err
	}
	return &yvalue{kind: yMap, line: n.Line, pairs: pairs, dups: c.dups[n]}, nil
}

func keyID(k *yvalue) string { return strconv.Itoa(int(k.kind)) + ":" + k.s }

// flatten returns the pairs of mapping node n with its merges applied,
// deduplicated as a Python dict would be.
func (c *yconv) flatten(n *yaml.Node) ([]ypair, *yamlError) {
	if p, ok := c.flat[n]; ok {
		return p, nil
	}
	var merged, own []ypair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			var kv *yvalue
			var err *yamlError
			if k.Kind == yaml.ScalarNode && k.Style == 0 && k.Value == "=" {
				// flatten_mapping turns a `=` key into a str.
				kv = &yvalue{kind: yStr, s: "=", line: k.Line}
			} else if kv, err = c.conv(k); err != nil {
				return nil, err
			}
			if kv.kind == ySeq || kv.kind == yMap {
				return nil, &yamlError{line: k.Line, msg: "YAML: a list or mapping cannot be a key (found unhashable key)"}
			}
			vv, err := c.conv(val)
			if err != nil {
				return nil, err
			}
			own = append(own, ypair{key: kv, val: vv})
			continue
		}
		src := deref(val)
		switch src.Kind {
		case yaml.MappingNode:
			p, err := c.flattenOnce(src, val.Line)
			if err != nil {
				return nil, err
			}
			merged = append(merged, p...)
		case yaml.SequenceNode:
			var subs [][]ypair
			for _, item := range src.Content {
				sub := deref(item)
				if sub.Kind != yaml.MappingNode {
					return nil, &yamlError{line: item.Line, msg: "YAML: `<<` merges mappings; this list item is not a mapping"}
				}
				p, err := c.flattenOnce(sub, item.Line)
				if err != nil {
					return nil, err
				}
				subs = append(subs, p)
			}
			for i := len(subs) - 1; i >= 0; i-- {
				merged = append(merged, subs[i]...)
			}
		default:
			return nil, &yamlError{line: val.Line, msg: "YAML: `<<` merges a mapping or a list of mappings"}
		}
	}
	seen := make(map[string]bool, len(own))
	for _, p := range own {
		id := keyID(p.key)
		if seen[id] {
			c.dups[n] = append(c.dups[n], p)
		}
		seen[id] = true
	}
	out := dedup(append(merged, own...))
	c.flat[n] = out
	return out, nil
}

// flattenOnce flattens a merged mapping, refusing cycles.
func (c *yconv) flattenOnce(n *yaml.Node, line int) ([]ypair, *yamlError) {
	if p, ok := c.flat[n]; ok {
		return p, nil
	}
	if c.busy[n] {
		return nil, &yamlError{line: line, msg: "YAML: a merge refers to a mapping that contains it"}
	}
	c.busy[n] = true
	defer delete(c.busy, n)
	return c.flatten(n)
}

// dedup applies Python dict assignment in order: a key keeps the position
// where it first appeared and takes the last value.
func dedup(pairs []ypair) []ypair {
	if len(pairs) < 2 {
		return pairs
	}
	index := make(map[string]int, len(pairs))
	out := make([]ypair, 0, len(pairs))
	for _, p := range pairs {
		id := keyID(p.key)
		if i, ok := index[id]; ok {
			out[i].val = p.val
			continue
		}
		index[id] = len(out)
		out = append(out, p)
	}
	return out
}

// PyYAML's implicit resolvers (yaml/resolver.py), applied to plain scalars
// in this order.
var (
	boolRe  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	floatRe = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?` +
		`|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?` +
		`|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*` +
		`|[-+]?\.(?:inf|Inf|INF)` +
		`|\.(?:nan|NaN|NAN))$`)
	intRe = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+` +
		`|[-+]?0[0-7_]+` +
		`|[-+]?(?:0|[1-9][0-9_]*)` +
		`|[-+]?0x[0-9a-fA-F_]+` +
		`|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	nullRe      = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	timestampRe = regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]` +
		`|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?` +
		`(?:[Tt]|[ \t]+)[0-9][0-9]?` +
		`:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?` +
		`(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)
	timestampPartsRe = regexp.MustCompile(`^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})` +
		`(?:(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]*)?` +
		`(?:[ \t]*(Z|([-+])([0-9]{1,2})(?::([0-9]{2}))?))?)?$`)
)

// resolvePlain is PyYAML's Resolver.resolve for a plain scalar.
func resolvePlain(s string) string {
	switch {
	case boolRe.MatchString(s):
		return "!!bool"
	case floatRe.MatchString(s):
		return "!!float"
	case intRe.MatchString(s):
		return "!!int"
	case s == "<<":
		return "!!merge"
	case nullRe.MatchString(s):
		return "!!null"
	case timestampRe.MatchString(s):
		return "!!timestamp"
	case s == "=":
		return "!!value"
	}
	return "!!str"
}

func scalar(n *yaml.Node) (*yvalue, *yamlError) {
	tag := "!!str"
	switch {
	case n.Style&yaml.TaggedStyle != 0:
		tag = n.Tag
	case n.Style == 0:
		tag = resolvePlain(n.Value)
	}
	v, err := construct(tag, n.Value)
	if err != nil {
		return nil, &yamlError{line: n.Line, msg: "YAML: " + err.Error()}
	}
	v.line, v.src = n.Line, n.Value
	return v, nil
}

// construct is SafeConstructor for one scalar with its tag.
func construct(tag, s string) (*yvalue, error) {
	switch tag {
	case "!!str":
		return &yvalue{kind: yStr, s: s}, nil
	case "!!null":
		return &yvalue{kind: yNull, s: "None"}, nil
	case "!!bool":
		switch strings.ToLower(s) {
		case "yes", "true", "on":
			return &yvalue{kind: yBool, s: "True"}, nil
		case "no", "false", "off":
			return &yvalue{kind: yBool, s: "False"}, nil
		}
		return nil, fmt.Errorf("%q is not a boolean", s)
	case "!!int":
		i, ok := pyInt(s)
		if !ok {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return &yvalue{kind: yInt, s: i}, nil
	case "!!float":
		f, ok := pyFloat(s)
		if !ok {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return &yvalue{kind: yFloat, s: f}, nil
	case "!!timestamp":
		if !validTimestamp(s) {
			return nil, fmt.Errorf("%q is not a valid date or time (YAML reads an unquoted YYYY-MM-DD as a date; quote it)", s)
		}
		return &yvalue{kind: yDate, s: s}, nil
	case "!!merge":
		return nil, errors.New("`<<` (a merge key) cannot be a value; quote it")
	case "!!value":
		return nil, errors.New("a plain `=` cannot be a value in YAML 1.1; quote it")
	}
	return nil, fmt.Errorf("tag %s is not supported (the safe loader constructs only str, int, float, bool, null, timestamp, lists and mappings)", tag)
}

// pyInt is SafeConstructor.construct_yaml_int; it returns Python's str().
func pyInt(s string) (string, bool) {
	if !intRe.MatchString(s) {
		return "", false
	}
	v := strings.ReplaceAll(s, "_", "")
	neg := false
	if v != "" && (v[0] == '-' || v[0] == '+') {
		neg = v[0] == '-'
		v = v[1:]
	}
	n := new(big.Int)
	ok := true
	switch {
	case v == "0":
	case strings.HasPrefix(v, "0b"):
		_, ok = n.SetString(v[2:], 2)
	case strings.HasPrefix(v, "0x"):
		_, ok = n.SetString(v[2:], 16)
	case strings.HasPrefix(v, "0"):
		_, ok = n.SetString(v, 8)
	case strings.Contains(v, ":"):
		base := big.NewInt(1)
		parts := strings.Split(v, ":")
		for i := len(parts) - 1; i >= 0; i-- {
			d, pok := new(big.Int).SetString(parts[i], 10)
			if !pok {
				return "", false
			}
			n.Add(n, d.Mul(d, base))
			base.Mul(base, big.NewInt(60))
		}
	default:
		_, ok = n.SetString(v, 10)
	}
	if !ok {
		return "", false
	}
	if neg {
		n.Neg(n)
	}
	return n.String(), true
}

// pyFloat is SafeConstructor.construct_yaml_float; it returns Python's repr().
func pyFloat(s string) (string, bool) {
	if !floatRe.MatchString(s) && !intRe.MatchString(s) {
		return "", false
	}
	v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	sign := 1.0
	if v != "" && (v[0] == '-' || v[0] == '+') {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	var f float64
	switch {
	case v == ".inf":
		f = math.Inf(1)
	case v == ".nan":
		return "nan", true
	case strings.Contains(v, ":"):
		base := 1.0
		parts := strings.Split(v, ":")
		for i := len(parts) - 1; i >= 0; i-- {
			d, err := strconv.ParseFloat(parts[i], 64)
			if err != nil {
				return "", false
			}
			f += d * base
			base *= 60
		}
	default:
		if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0b") {
			return "", false
		}
		var err error
		f, err = strconv.ParseFloat(v, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return "", false
		}
	}
	return pyFloatRepr(sign * f), true
}

// pyFloatRepr is Python's repr() of a float.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// validTimestamp reports whether SafeConstructor.construct_yaml_timestamp
// accepts s (Python's datetime range checks).
func validTimestamp(s string) bool {
	m := timestampPartsRe.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	y, mo, d := atoi(m[1]), atoi(m[2]), atoi(m[3])
	if y < 1 || mo < 1 || mo > 12 || d < 1 || d > time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return false
	}
	if m[4] != "" && (atoi(m[4]) > 23 || atoi(m[5]) > 59 || atoi(m[6]) > 59) {
		return false
	}
	if m[8] != "" && atoi(m[9])*60+atoi(m[10]) >= 24*60 {
		return false
	}
	return true
}
