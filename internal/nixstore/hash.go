package nixstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// Hash is a sha256 digest: a NarHash or a FileHash. Binary caches only use
// sha256 for those.
type Hash [sha256.Size]byte

// String returns the hash as narinfo files and signatures write it:
// "sha256:" followed by nixbase32.
func (h Hash) String() string { return "sha256:" + nixbase32.EncodeToString(h[:]) }

// SRI returns the hash as "sha256-" followed by base64.
func (h Hash) SRI() string { return "sha256-" + base64.StdEncoding.EncodeToString(h[:]) }

// IsZero reports whether h is the zero value (no hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText writes the String form.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText accepts what ParseHash accepts.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses a sha256 hash in any of Nix's notations:
// "sha256:" followed by nixbase32, base16 or base64, or SRI "sha256-BASE64".
func ParseHash(s string) (Hash, error) {
	algo := nixhash.SHA256
	if !strings.HasPrefix(s, "sha256:") && !strings.HasPrefix(s, "sha256-") {
		return Hash{}, fmt.Errorf("hash %q is not a sha256 hash (expected sha256:… or sha256-…)", s)
	}
	h, err := nixhash.ParseAny(s, &algo)
	if err != nil {
		return Hash{}, fmt.Errorf("invalid hash %q: %v", s, err)
	}
	var out Hash
	copy(out[:], h.Digest())
	return out, nil
}

// structuredHash is the JSON object newer Nix writes for hashes.
type structuredHash struct {
	Algorithm string `json:"algorithm"`
	Format    string `json:"format"`
	Hash      string `json:"hash"`
}

// toString turns a structured hash into the "ALGO:DIGEST" or SRI string
// form. The declared format must match the digest's encoding.
func (sh structuredHash) toString() (string, error) {
	if sh.Algorithm == "" || sh.Hash == "" {
		return "", fmt.Errorf("structured hash needs \"algorithm\" and \"hash\"")
	}
	s := sh.Algorithm + ":" + sh.Hash
	var want nixhash.Encoding
	switch sh.Format {
	case "sri":
		s, want = sh.Hash, nixhash.SRI
	case "base64":
		want = nixhash.Base64
	case "nix32", "base32":
		want = nixhash.NixBase32
	case "base16":
		want = nixhash.Base16
	default:
		return "", fmt.Errorf("structured hash has unknown format %q", sh.Format)
	}
	h, err := nixhash.ParseAny(s, nil)
	if err != nil {
		return "", fmt.Errorf("invalid %s hash %q: %v", sh.Format, sh.Hash, err)
	}
	if h.Format(want, true) != s {
		return "", fmt.Errorf("hash %q is not %s %s", sh.Hash, sh.Algorithm, sh.Format)
	}
	return s, nil
}

// decodeAnyHash decodes a JSON hash that is a string or a structured
// object into its string form.
func decodeAnyHash(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var sh structuredHash
	if err := strictUnmarshal(raw, &sh); err != nil {
		return "", fmt.Errorf("expected a hash string or {\"algorithm\",\"format\",\"hash\"}, got %s", abbrev(raw))
	}
	return sh.toString()
}

// decodeNarHash decodes a sha256 hash in any JSON form Nix writes.
func decodeNarHash(raw json.RawMessage) (Hash, error) {
	s, err := decodeAnyHash(raw)
	if err != nil {
		return Hash{}, err
	}
	return ParseHash(s)
}

// renderHashNix32 renders any "ALGO:…" or SRI hash as Nix renders hashes
// in content addresses: "ALGO:" followed by nixbase32.
func renderHashNix32(s string) (string, error) {
	h, err := nixhash.ParseAny(s, nil)
	if err != nil {
		return "", fmt.Errorf("invalid hash %q: %v", s, err)
	}
	return h.Format(nixhash.NixBase32, true), nil
}

func abbrev(raw []byte) string {
	if len(raw) > 80 {
		return string(raw[:77]) + "..."
	}
	return string(raw)
}
