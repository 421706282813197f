package bucket

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// ValidateKey checks an object key: non-empty valid UTF-8 of at most
// MaxKeyLen bytes, '/'-separated segments, none of them empty, "." or "..",
// no leading '/', no NUL or other control character, no backslash. Such a
// key means the same object on every store and cannot escape a directory
// bucket's root. The error matches ErrInvalidKey and names the key.
func ValidateKey(key string) error {
	if key == "" {
		return keyError(key, "empty key")
	}
	if strings.HasSuffix(key, "/") {
		return keyError(key, "key ends with '/'")
	}
	return checkPath(key)
}

// ValidatePrefix checks a List prefix: "" (everything), or what
// ValidateKey accepts, optionally ending in '/'. A prefix may end in the
// middle of a segment ("nar/ab" lists nar/abc…).
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkPath(strings.TrimSuffix(prefix, "/"))
}

func checkPath(key string) error {
	switch {
	case key == "":
		return keyError(key, "empty segment")
	case len(key) > MaxKeyLen:
		return keyError(key, fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return keyError(key, "not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return keyError(key, "leading '/'")
	}
	for _, r := range key {
		switch {
		case r == 0:
			return keyError(key, "contains NUL")
		case r < 0x20 || r == 0x7f:
			return keyError(key, "contains a control character")
		case r == '\\':
			return keyError(key, "contains a backslash")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return keyError(key, "empty segment ('//')")
		case ".", "..":
			return keyError(key, "segment "+seg)
		}
	}
	return nil
}

func keyError(key, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why)
}
