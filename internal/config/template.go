package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Placeholders are the names a template may use (SPEC §3).
var Placeholders = []string{"version", "major", "name", "system", "profile", "env", "n", "user", "title", "date"}

var placeholderRe = regexp.MustCompile(`\{([^{}]*)\}`)

// CheckTemplate reports a malformed or unknown placeholder in t. A
// template is text with {name} placeholders; braces have no other use, so
// every '{' must be closed by a '}' before the next '{' (no nesting, no
// "{{" escape), every '}' must close one, and every name must be one of
// Placeholders. The error gives the character position (1-based) of the
// offending brace; t itself is quoted with %q.
func CheckTemplate(t string) error {
	open := -1 // byte offset of the unclosed '{', or -1
	pos := func(off int) int { return 1 + utf8.RuneCountInString(t[:off]) }
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '{':
			if open >= 0 {
				return fmt.Errorf("malformed template %q: '{' at character %d opens a placeholder inside the one opened at character %d (placeholders cannot nest and there is no {{ escape; write e.g. {version})", t, pos(i), pos(open))
			}
			open = i
		case '}':
			if open < 0 {
				return fmt.Errorf("malformed template %q: '}' at character %d closes no placeholder (write e.g. {version})", t, pos(i))
			}
			name := t[open+1 : i]
			if name == "" {
				return fmt.Errorf("malformed template %q: empty placeholder {} at character %d (known: {%s})", t, pos(open), strings.Join(Placeholders, "}, {"))
			}
			if !contains(Placeholders, name) {
				return fmt.Errorf("unknown placeholder {%s} in %q (known: {%s})", name, t, strings.Join(Placeholders, "}, {"))
			}
			open = -1
		}
	}
	if open >= 0 {
		return fmt.Errorf("malformed template %q: '{' at character %d is never closed (write e.g. {major})", t, pos(open))
	}
	return nil
}

// Expand substitutes {name} placeholders from vars. A placeholder that is
// not in vars is an error naming it.
func Expand(t string, vars map[string]string) (string, error) {
	var err error
	out := placeholderRe.ReplaceAllStringFunc(t, func(m string) string {
		k := m[1 : len(m)-1]
		v, ok := vars[k]
		if !ok && err == nil {
			var have []string
			for h := range vars {
				have = append(have, "{"+h+"}")
			}
			sort.Strings(have)
			err = fmt.Errorf("template %q: placeholder {%s} has no value here (available: %s)", t, k, strings.Join(have, ", "))
		}
		return v
	})
	return out, err
}

// ParseSize reads sizes like "65MB", "1.5GiB", "500kB", "1024".
// Decimal units are powers of 1000, binary ones (KiB, MiB, GiB) of 1024.
func ParseSize(s string) (int64, error) {
	m := regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (write e.g. \"65MB\" or \"1GiB\")", s)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{
		"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
		"k": 1e3, "m": 1e6, "g": 1e9,
	}[strings.ToLower(m[2])]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, kB, MB, GB, KiB, MiB, GiB)", s, m[2])
	}
	return int64(f * mult), nil
}

// ParseGrowth reads a closure growth limit: a percentage ("10%") or a size.
func ParseGrowth(s string) (percent float64, size int64, err error) {
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, "%") {
		num := strings.TrimSuffix(t, "%")
		p, perr := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if perr != nil || !growthNumber.MatchString(num) {
			return 0, 0, fmt.Errorf("%q is not a percentage (write e.g. \"10%%\", or a size such as \"50MB\")", s)
		}
		return p, 0, nil
	}
	size, err = ParseSize(t)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is neither a percentage (\"10%%\") nor a size (\"50MB\", \"1GiB\")", s)
	}
	return 0, size, nil
}

// growthNumber is the number of a percentage: digits, maybe a fraction
// (not NaN, Inf or an exponent, which ParseFloat accepts).
var growthNumber = regexp.MustCompile(`^\s*[0-9]+(\.[0-9]+)?\s*$`)
