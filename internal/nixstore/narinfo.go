package nixstore

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// NarInfo is the content of a HASHPART.narinfo file.
type NarInfo struct {
	StorePath   StorePath
	URL         string // relative to the cache root, e.g. nar/HASH.nar.zst
	Compression string // "zstd", "xz", "none"…
	FileHash    Hash   // of the file at URL
	FileSize    uint64
	NarHash     Hash
	NarSize     uint64
	References  []StorePath
	Deriver     StorePath // zero if unknown
	Sigs        []string  // "KEYNAME:BASE64"
	CA          string    // "" if input-addressed
}

// NewNarInfo starts a narinfo from a path's information; the caller fills
// in URL, Compression, FileHash and FileSize, and signs it.
func NewNarInfo(pi *PathInfo) *NarInfo {
	return &NarInfo{
		StorePath:  pi.Path,
		NarHash:    pi.NarHash,
		NarSize:    pi.NarSize,
		References: slices.Clone(pi.References),
		Deriver:    pi.Deriver,
		Sigs:       slices.Clone(pi.Signatures),
		CA:         pi.CA,
	}
}

// Fingerprint returns the string the narinfo's signatures sign.
func (ni *NarInfo) Fingerprint() string {
	return Fingerprint(ni.StorePath, ni.NarHash, ni.NarSize, ni.References)
}

// Sign adds the signature of key, replacing an older one by the same key.
func (ni *NarInfo) Sign(key *SecretKey) {
	sig := key.Sign(ni.Fingerprint())
	prefix := key.Name() + ":"
	ni.Sigs = slices.DeleteFunc(ni.Sigs, func(s string) bool { return strings.HasPrefix(s, prefix) })
	ni.Sigs = append(ni.Sigs, sig)
}

// Marshal writes the narinfo as Nix does: fields in Nix's order, each
// "Key: value\n"; References as sorted base names, written even when
// empty; Deriver as a base name when known; one Sig line per signature,
// sorted; CA when the path has one; hashes as "sha256:" nixbase32.
func (ni *NarInfo) Marshal() ([]byte, error) {
	if ni.StorePath.IsZero() {
		return nil, fmt.Errorf("narinfo: no store path")
	}
	check := func(field, v string) error {
		if v == "" || strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("narinfo for %s: %s %q is empty or contains a line break", ni.StorePath, field, v)
		}
		return nil
	}
	if err := check("URL", ni.URL); err != nil {
		return nil, err
	}
	if err := check("Compression", ni.Compression); err != nil {
		return nil, err
	}
	if ni.FileHash.IsZero() || ni.NarHash.IsZero() || ni.NarSize == 0 {
		return nil, fmt.Errorf("narinfo for %s: FileHash, NarHash and NarSize are required", ni.StorePath)
	}
	var b bytes.Buffer
	field := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	field("StorePath", ni.StorePath.String())
	field("URL", ni.URL)
	field("Compression", ni.Compression)
	field("FileHash", ni.FileHash.String())
	field("FileSize", strconv.FormatUint(ni.FileSize, 10))
	field("NarHash", ni.NarHash.String())
	field("NarSize", strconv.FormatUint(ni.NarSize, 10))
	refs := make([]string, len(ni.References))
	for i, r := range ni.References {
		refs[i] = r.Base()
	}
	slices.Sort(refs)
	field("References", strings.Join(slices.Compact(refs), " "))
	if !ni.Deriver.IsZero() {
		field("Deriver", ni.Deriver.Base())
	}
	sigs := slices.Clone(ni.Sigs)
	slices.Sort(sigs)
	for _, s := range slices.Compact(sigs) {
		if err := check("Sig", s); err != nil {
			return nil, err
		}
		field("Sig", s)
	}
	if ni.CA != "" {
		if err := check("CA", ni.CA); err != nil {
			return nil, err
		}
		field("CA", ni.CA)
	}
	return b.Bytes(), nil
}

// ParseNarInfo parses a narinfo for a store in storeDir. It is stricter
// than Nix, for verification: every line must be "Key: value", the file
// must end with a newline, and fields other than Sig may not repeat.
// Unknown fields (e.g. System) are ignored, as Nix ignores them. source
// names the narinfo in errors.
func ParseNarInfo(data []byte, source, storeDir string) (*NarInfo, error) {
	ni := &NarInfo{}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: empty narinfo", source)
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%s: truncated narinfo (no newline at the end)", source)
	}
	seen := map[string]bool{}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	for i, line := range lines {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", source, i+1, fmt.Sprintf(format, args...))
		}
		key, value, ok := strings.Cut(line, ": ")
		if !ok || key == "" {
			return nil, fail("expected \"Key: value\", got %q", abbrev([]byte(line)))
		}
		if key != "Sig" {
			if seen[key] {
				return nil, fail("%s appears twice", key)
			}
			seen[key] = true
		}
		var err error
		switch key {
		case "StorePath":
			ni.StorePath, err = ParseStorePath(storeDir, value)
		case "URL":
			ni.URL = value
			if value == "" {
				err = fmt.Errorf("empty URL")
			}
		case "Compression":
			ni.Compression = value
		case "FileHash":
			ni.FileHash, err = ParseHash(value)
		case "FileSize":
			ni.FileSize, err = strconv.ParseUint(value, 10, 64)
		case "NarHash":
			ni.NarHash, err = ParseHash(value)
		case "NarSize":
			ni.NarSize, err = strconv.ParseUint(value, 10, 64)
		case "References":
			for _, base := range strings.Fields(value) {
				ref, perr := ParseBaseName(storeDir, base)
				if perr != nil {
					err = perr
					break
				}
				ni.References = append(ni.References, ref)
			}
			ni.References = sortPaths(ni.References)
		case "Deriver":
			if value != "unknown-deriver" {
				ni.Deriver, err = ParseBaseName(storeDir, value)
			}
		case "Sig":
			if i := strings.IndexByte(value, ':'); i <= 0 || i == len(value)-1 {
				err = fmt.Errorf("signature %q is not NAME:SIG", value)
			}
			ni.Sigs = append(ni.Sigs, value)
		case "CA":
			ni.CA = value
			err = validateCA(value)
		}
		if err != nil {
			return nil, fail("%s: %v", key, err)
		}
	}
	for _, k := range []string{"StorePath", "URL", "NarHash", "NarSize"} {
		if !seen[k] {
			return nil, fmt.Errorf("%s: narinfo has no %s", source, k)
		}
	}
	if ni.Compression == "" {
		ni.Compression = "bzip2" // Nix's default when the field is missing
	}
	return ni, nil
}
