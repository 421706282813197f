package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// locator finds the line of a key in the TOML text, for error messages
// about values that decoded fine but are not valid.
type locator struct{ data []byte }

var (
	headerRe = regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)
	keyRe    = regexp.MustCompile(`^\s*("?[A-Za-z0-9_.-]+"?)\s*=`)
)

// scan calls visit for every key line with its table and key (table names
// have quotes removed; arrays of tables get their index: images.0).
func (l locator) scan(visit func(table, key string, line int) bool) {
	table := ""
	arrays := map[string]int{}
	for i, text := range strings.Split(string(l.data), "\n") {
		if m := headerRe.FindStringSubmatch(text); m != nil && !strings.Contains(text, "=") {
			name := strings.ReplaceAll(m[1], `"`, "")
			name = strings.ReplaceAll(name, " ", "")
			if strings.HasPrefix(strings.TrimSpace(text), "[[") {
				n := arrays[name]
				arrays[name] = n + 1
				if !visit(name, "", i+1) {
					return
				}
				name = fmt.Sprintf("%s.%d", name, n)
			} else if !visit(name, "", i+1) {
				return
			}
			table = name
			continue
		}
		if m := keyRe.FindStringSubmatch(text); m != nil {
			key := strings.Trim(m[1], `"`)
			if !visit(table, key, i+1) {
				return
			}
		}
	}
}

// line returns the line of a dotted key path such as "notes.layout" or
// "environments.staging.images", or 0 when it is not found.
func (l locator) line(path string) int {
	found := 0
	l.scan(func(table, key string, line int) bool {
		full := key
		if table != "" {
			full = table + "." + key
			if key == "" {
				full = table
			}
		}
		// Array-of-tables index: environments.staging.images.0.tags → match
		// the path without indexes too.
		plain := regexp.MustCompile(`\.\d+(\.|$)`).ReplaceAllString(full, "$1")
		if full == path || plain == path {
			found = line
			return false
		}
		return true
	})
	return found
}

// presentKeys returns the set of "table.key" written in the file.
func (l locator) presentKeys() map[string]bool {
	seen := map[string]bool{}
	l.scan(func(table, key string, line int) bool {
		if key != "" {
			if table != "" {
				seen[table+"."+key] = true
			} else {
				seen[key] = true
			}
		}
		return true
	})
	return seen
}

// lineOfGoField finds the first line whose key is the snake_case (or
// verbatim) form of a Go field name.
func (l locator) lineOfGoField(field string) int {
	snake := toSnake(field)
	found := 0
	l.scan(func(table, key string, line int) bool {
		if key == snake || key == field {
			found = line
			return false
		}
		return true
	})
	return found
}

func toSnake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prevLower := r[i-1] >= 'a' && r[i-1] <= 'z' || r[i-1] >= '0' && r[i-1] <= '9'
			nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
			if prevLower || nextLower {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
