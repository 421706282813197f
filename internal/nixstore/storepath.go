package nixstore

import (
	"fmt"
	"path"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"
)

// DefaultStoreDir is the store directory of a standard Nix installation.
const DefaultStoreDir = "/nix/store"

const (
	// HashLen is the length of the hash part of a store path: 160 bits in
	// nixbase32.
	HashLen = 32
	// MaxNameLen is the longest name Nix accepts in a store path.
	MaxNameLen = 211
)

// StorePath is a validated store path: Dir/Hash-Name.
type StorePath struct {
	Dir  string // store directory, e.g. /nix/store
	Hash string // hash part, 32 nixbase32 characters
	Name string
}

// String returns the absolute path.
func (p StorePath) String() string {
	if p.Hash == "" {
		return ""
	}
	return p.Dir + "/" + p.Hash + "-" + p.Name
}

// Base returns the base name, HASH-NAME.
func (p StorePath) Base() string {
	if p.Hash == "" {
		return ""
	}
	return p.Hash + "-" + p.Name
}

// IsZero reports whether p is the zero StorePath (no path).
func (p StorePath) IsZero() bool { return p.Hash == "" }

// ValidateStoreDir checks that dir can be a store directory: absolute,
// clean, and not the root.
func ValidateStoreDir(dir string) error {
	if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
		return fmt.Errorf("store directory %q is not a clean absolute path", dir)
	}
	return nil
}

// ParseStorePath parses an absolute store path in the store directory dir.
// A path below a store path (/nix/store/HASH-NAME/bin) is an error.
func ParseStorePath(dir, s string) (StorePath, error) {
	if err := ValidateStoreDir(dir); err != nil {
		return StorePath{}, err
	}
	base, ok := strings.CutPrefix(s, dir+"/")
	if !ok {
		return StorePath{}, fmt.Errorf("%q is not in the store directory %s", s, dir)
	}
	p, err := parseBase(dir, base)
	if err != nil {
		return StorePath{}, fmt.Errorf("%q is not a valid store path: %v", s, err)
	}
	return p, nil
}

// ParseBaseName parses HASH-NAME, the base name of a store path in dir.
func ParseBaseName(dir, base string) (StorePath, error) {
	if err := ValidateStoreDir(dir); err != nil {
		return StorePath{}, err
	}
	p, err := parseBase(dir, base)
	if err != nil {
		return StorePath{}, fmt.Errorf("%q is not a valid store path base name: %v", base, err)
	}
	return p, nil
}

func parseBase(dir, base string) (StorePath, error) {
	if len(base) < HashLen+2 || base[HashLen] != '-' {
		return StorePath{}, fmt.Errorf("expected %d hash characters, '-' and a name", HashLen)
	}
	hash, name := base[:HashLen], base[HashLen+1:]
	for i := 0; i < len(hash); i++ {
		if strings.IndexByte(nixbase32.Alphabet, hash[i]) < 0 {
			return StorePath{}, fmt.Errorf("hash part contains %q, which is not a nixbase32 character", hash[i])
		}
	}
	if err := ValidateName(name); err != nil {
		return StorePath{}, err
	}
	return StorePath{Dir: dir, Hash: hash, Name: name}, nil
}

// ValidateName checks a store path name as current Nix does: 1 to 211
// characters from [A-Za-z0-9+-._?=], and neither "." or ".." nor starting
// with ".-" or "..-". (Nix before 2.20 and Lix also refuse any name
// starting with "."; accepting them lets releng publish what newer Nix
// produced.)
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name is %d characters long (limit %d)", len(name), MaxNameLen)
	}
	if name == "." || name == ".." || strings.HasPrefix(name, ".-") || strings.HasPrefix(name, "..-") {
		return fmt.Errorf("name %q is not allowed", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("+-._?=", c) >= 0:
		default:
			return fmt.Errorf("name %q contains the illegal character %q", name, c)
		}
	}
	return nil
}
