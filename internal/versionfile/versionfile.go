// Package versionfile reads and writes the project's version.json exactly as
// Lix keeps it: {"version", "official_release", "release_name"}, 4-space
// indent, key order and trailing newline preserved on write.
package versionfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"unicode/utf8"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/textutil"
	"github.com/releng-project/releng/internal/version"
)

// File is a parsed version file with the bytes it was read from.
type File struct {
	Path            string
	Version         string
	OfficialRelease bool
	ReleaseName     string
	raw             []byte
}

// Error is a problem with the version file; it names the file.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Read parses the version file at path, which must lie inside the project
// root (a symbolic link leading out of it is refused, naming the link), and
// validates the version (PEP 440). The read is bounded by
// fsutil.MaxVersionFile.
func Read(root, path string) (*File, error) {
	raw, err := fsutil.ReadFileIn(root, path, fsutil.MaxVersionFile)
	if err != nil {
		var esc *fsutil.EscapeError
		var big *fsutil.TooLargeError
		var nr *fsutil.NotRegularError
		if errors.As(err, &esc) || errors.As(err, &big) || errors.As(err, &nr) {
			return nil, &Error{Path: path, Msg: err.Error()}
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{Path: path, Msg: "version file not found; create it with {\"version\": \"1.0.0\", \"official_release\": false, \"release_name\": \"…\"} or set version_file in releng.toml"}
		}
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	return Parse(path, raw)
}

// Parse parses version file contents read from path. The file must be
// UTF-8 without a byte order mark; version and release_name must be one line
// of visible text (textutil.CheckText), since both go into the release
// commit and tag message. Every error is an *Error naming the file and,
// where there is one, the line.
func Parse(path string, raw []byte) (*File, error) {
	if err := checkEncoding(path, raw); err != nil {
		return nil, err
	}
	var doc struct {
		Version         *string `json:"version"`
		OfficialRelease *bool   `json:"official_release"`
		ReleaseName     *string `json:"release_name"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, &Error{Path: path, Line: lineAt(raw, se.Offset), Msg: "not valid JSON: " + se.Error()}
		case errors.As(err, &te):
			return nil, &Error{Path: path, Line: lineAt(raw, te.Offset), Msg: fmt.Sprintf("%q must be a %s, not a JSON %s", te.Field, kind(te.Field), te.Value)}
		}
		return nil, &Error{Path: path, Msg: "not valid JSON: " + err.Error()}
	}
	if doc.Version == nil {
		return nil, &Error{Path: path, Msg: "missing \"version\" (e.g. \"version\": \"2.93.0\")"}
	}
	for _, s := range []struct {
		key string
		val *string
	}{{"version", doc.Version}, {"release_name", doc.ReleaseName}} {
		if s.val == nil {
			continue
		}
		if err := textutil.CheckText(*s.val); err != nil {
			return nil, &Error{Path: path, Line: lineOf(raw, `"`+s.key+`"`), Msg: fmt.Sprintf("%q %v", s.key, err)}
		}
	}
	if _, err := version.Parse(*doc.Version); err != nil {
		return nil, &Error{Path: path, Line: lineOf(raw, `"version"`), Msg: err.Error()}
	}
	if err := ValidateTag(*doc.Version); err != nil {
		return nil, &Error{Path: path, Line: lineOf(raw, `"version"`), Msg: err.Error()}
	}
	f := &File{Path: path, Version: *doc.Version, raw: raw}
	if doc.OfficialRelease != nil {
		f.OfficialRelease = *doc.OfficialRelease
	}
	if doc.ReleaseName != nil {
		f.ReleaseName = *doc.ReleaseName
	}
	return f, nil
}

// checkEncoding refuses a byte order mark (encoding/json would say
// "invalid character 'ï'") and bytes that are not UTF-8 (encoding/json
// would silently turn them into U+FFFD inside strings).
func checkEncoding(path string, raw []byte) error {
	switch {
	case bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")):
		return &Error{Path: path, Line: 1, Msg: "starts with a UTF-8 byte order mark (BOM); save it without one"}
	case bytes.HasPrefix(raw, []byte("\xff\xfe")) || bytes.HasPrefix(raw, []byte("\xfe\xff")):
		return &Error{Path: path, Line: 1, Msg: "starts with a UTF-16 byte order mark: it is UTF-16; save it as UTF-8 without a BOM"}
	}
	if utf8.Valid(raw) {
		return nil
	}
	i := 0
	for i < len(raw) {
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	line := lineAt(raw, int64(i))
	col := 1 + utf8.RuneCount(raw[bytes.LastIndexByte(raw[:i], '\n')+1:i])
	return &Error{Path: path, Line: line, Msg: fmt.Sprintf("not valid UTF-8: byte 0x%02X at column %d; save it as UTF-8", raw[i], col)}
}

// lineAt is the line (1-based) of byte offset off in raw.
func lineAt(raw []byte, off int64) int {
	return 1 + bytes.Count(raw[:min(int(off), len(raw))], []byte("\n"))
}

func kind(field string) string {
	if field == "official_release" {
		return "boolean"
	}
	return "string"
}

func lineOf(raw []byte, s string) int {
	i := bytes.Index(raw, []byte(s))
	if i < 0 {
		return 0
	}
	return 1 + bytes.Count(raw[:i], []byte("\n"))
}

var tagRe = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._+-]*$`)

// ValidateTag checks that a version can be used as a git tag name and in
// paths and URLs as it is: no spaces, shell or path characters, no leading
// dash.
func ValidateTag(v string) error {
	if !tagRe.MatchString(v) || len(v) > 128 {
		return fmt.Errorf("version %q cannot be used as a tag, path or URL: use only letters, digits, '.', '_', '+' and '-', starting with a letter or digit", v)
	}
	return nil
}

// Major is the first two dot-separated components of the version.
func (f *File) Major() string {
	m, _ := version.Major(f.Version)
	return m
}

// IsPrerelease reports whether the version is a pre-release (§5).
func (f *File) IsPrerelease() bool {
	v, err := version.Parse(f.Version)
	return err == nil && v.IsPrerelease()
}

var officialRe = regexp.MustCompile(`("official_release"\s*:\s*)(true|false)`)

// SetOfficial writes the file back with official_release set to value,
// changing nothing else byte for byte. The write is atomic.
func (f *File) SetOfficial(value bool) error {
	out, err := f.WithOfficial(value)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(f.Path, out, 0o644); err != nil {
		return err
	}
	f.raw = out
	f.OfficialRelease = value
	return nil
}

// WithOfficial returns the file's bytes with official_release set to value.
func (f *File) WithOfficial(value bool) ([]byte, error) {
	locs := officialRe.FindAllSubmatchIndex(f.raw, -1)
	if len(locs) != 1 {
		return nil, &Error{Path: f.Path, Msg: "expected exactly one \"official_release\": true|false to flip; add \"official_release\": false"}
	}
	l := locs[0]
	var b bytes.Buffer
	b.Write(f.raw[:l[4]])
	fmt.Fprint(&b, value)
	b.Write(f.raw[l[5]:])
	return b.Bytes(), nil
}

// Raw returns the bytes the file was read from.
func (f *File) Raw() []byte { return f.raw }
