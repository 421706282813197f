package version

// ParseDrvName splits a store name into its package name and version as
// Nix's builtins.parseDrvName does: the name ends at the first "-" that is
// followed by a character that is not an ASCII letter ("hello-2.12.1" →
// "hello", "2.12.1"; "foo-bar-1.0" → "foo-bar", "1.0"; "foo--1" → "foo",
// "-1"). Without such a dash the whole string is the name and the version is
// empty ("foo-bar", "foo-" → version ""). Like Nix in the C and UTF-8
// locales, non-ASCII bytes are not letters.
func ParseDrvName(name string) (pname, version string) {
	for i := 0; i+1 < len(name); i++ {
		if name[i] == '-' && !isASCIILetter(name[i+1]) {
			return name[:i], name[i+1:]
		}
	}
	return name, ""
}

// CompareNix returns -1, 0 or +1 as version a sorts before, equal to or
// after b by Nix's builtins.compareVersions (Nix 2.8's algorithm).
//
// Both strings are split into components: runs of ASCII digits, and runs of
// other characters, with "." and "-" separating components and dropped. A
// missing component is "". Components compare pairwise until they differ:
// two numbers numerically; "" before a number; "pre" before anything else;
// a number after any string; strings bytewise. So "1.0" < "1.0.0",
// "2.3pre1" < "2.3" < "2.3rc1" < "2.3.1", and "1.01" = "1.1".
//
// A "number" is what Nix's string2Int<int> accepts: a run of digits whose
// value fits a 32-bit signed int (leading zeros allowed). A longer digit run
// (value above 2147483647) is compared as a string, exactly as Nix 2.8 does:
// "1.2147483648" < "1.5", because a number sorts after a string.
func CompareNix(a, b string) int {
	for i, j := 0, 0; i < len(a) || j < len(b); {
		var c1, c2 string
		c1, i = nextNixComponent(a, i)
		c2, j = nextNixComponent(b, j)
		if nixComponentLess(c1, c2) {
			return -1
		}
		if nixComponentLess(c2, c1) {
			return 1
		}
	}
	return 0
}

// nextNixComponent returns the component of s starting at or after i (after
// skipping separators) and the index just past it.
func nextNixComponent(s string, i int) (string, int) {
	for i < len(s) && (s[i] == '.' || s[i] == '-') {
		i++
	}
	start := i
	if i < len(s) && isASCIIDigit(s[i]) {
		for i < len(s) && isASCIIDigit(s[i]) {
			i++
		}
	} else {
		for i < len(s) && !isASCIIDigit(s[i]) && s[i] != '.' && s[i] != '-' {
			i++
		}
	}
	return s[start:i], i
}

// nixComponentLess is Nix's componentsLT.
func nixComponentLess(c1, c2 string) bool {
	n1, ok1 := nixInt(c1)
	n2, ok2 := nixInt(c2)
	switch {
	case ok1 && ok2:
		return n1 < n2
	case c1 == "" && ok2:
		return true
	case c1 == "pre" && c2 != "pre":
		return true
	case c2 == "pre":
		return false
	case ok2: // "Assume that 2.3a < 2.3.1."
		return true
	case ok1:
		return false
	}
	return c1 < c2
}

// nixInt is Nix 2.8's string2Int<int> on a component: digits only (any
// number of leading zeros) with a value of at most 2^31-1.
func nixInt(c string) (int64, bool) {
	if c == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(c); i++ {
		if !isASCIIDigit(c[i]) {
			return 0, false
		}
		n = n*10 + int64(c[i]-'0')
		if n > 1<<31-1 {
			return 0, false
		}
	}
	return n, true
}

func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
