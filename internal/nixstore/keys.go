package nixstore

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/releng-project/releng/internal/fsutil"
)

// PublicKey is a named ed25519 public key, "NAME:BASE64" in Nix's
// trusted-public-keys.
type PublicKey struct {
	Name string
	Key  ed25519.PublicKey
}

// String returns "NAME:BASE64".
func (k PublicKey) String() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key)
}

// Verify reports whether sig ("KEYNAME:BASE64") is this key's signature of
// fingerprint. A signature by another key name is not.
func (k PublicKey) Verify(fingerprint, sig string) bool {
	s, err := signature.ParseSignature(sig)
	if err != nil || s.Name != k.Name {
		return false
	}
	return signature.PublicKey{Name: k.Name, Data: k.Key}.Verify(fingerprint, s)
}

// ParsePublicKey parses "NAME:BASE64" (32 bytes).
func ParsePublicKey(s string) (PublicKey, error) {
	name, data, err := splitKey(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key: %v", err)
	}
	if len(data) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("public key %q is %d bytes long, expected %d", name, len(data), ed25519.PublicKeySize)
	}
	return PublicKey{Name: name, Key: ed25519.PublicKey(data)}, nil
}

// LoadPublicKeyFile reads a public key file (a regular file of at most
// fsutil.MaxSmallState bytes); a trailing newline is fine.
func LoadPublicKeyFile(file string) (PublicKey, error) {
	data, err := fsutil.ReadFile(file, fsutil.MaxSmallState)
	if err != nil {
		return PublicKey{}, err
	}
	k, err := ParsePublicKey(trimKey(data))
	if err != nil {
		return PublicKey{}, fmt.Errorf("%s: %v", file, err)
	}
	return k, nil
}

// VerifySignatures returns the names of the keys among keys that signed
// fingerprint with one of sigs, each at most once.
func VerifySignatures(fingerprint string, sigs []string, keys []PublicKey) []string {
	var ok []string
	for _, k := range keys {
		for _, s := range sigs {
			if k.Verify(fingerprint, s) {
				ok = append(ok, k.Name)
				break
			}
		}
	}
	return ok
}

// SecretKey is a named ed25519 secret key. Its String and GoString never
// show the key material, so it can be logged by mistake without harm.
type SecretKey struct {
	name string
	key  ed25519.PrivateKey
	sk   signature.SecretKey
}

// Name returns the key's name.
func (k *SecretKey) Name() string { return k.name }

// String returns a description without the key material.
func (k *SecretKey) String() string { return "secret key " + k.name }

// GoString returns a description without the key material.
func (k *SecretKey) GoString() string { return "nixstore.SecretKey(" + k.name + ")" }

// PublicKey returns the public half, as `nix key convert-secret-to-public`
// does.
func (k *SecretKey) PublicKey() PublicKey {
	return PublicKey{Name: k.name, Key: ed25519.PublicKey(bytes.Clone(k.key[ed25519.SeedSize:]))}
}

// Sign signs fingerprint and returns "KEYNAME:BASE64". ed25519 is
// deterministic: Nix signing the same fingerprint with the same key
// writes the same signature.
func (k *SecretKey) Sign(fingerprint string) string {
	sig, err := k.sk.Sign(nil, fingerprint)
	if err != nil {
		// ed25519 signing cannot fail with a valid key.
		panic("nixstore: signing failed: " + err.Error())
	}
	return sig.String()
}

// ParseSecretKey parses "NAME:BASE64" (64 bytes: seed and public key).
// Errors quote neither the key material nor the name.
func ParseSecretKey(s string) (*SecretKey, error) {
	name, data, err := splitKey(s)
	if err != nil {
		return nil, fmt.Errorf("secret key: %v", err)
	}
	if len(data) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("secret key: key is %d bytes long, expected %d", len(data), ed25519.PrivateKeySize)
	}
	priv := ed25519.PrivateKey(data)
	derived := ed25519.NewKeyFromSeed(priv.Seed())
	if !bytes.Equal(derived[ed25519.SeedSize:], data[ed25519.SeedSize:]) {
		return nil, fmt.Errorf("secret key is corrupt: its public half does not match its seed")
	}
	sk, err := signature.LoadSecretKey(s)
	if err != nil {
		return nil, fmt.Errorf("secret key is corrupt")
	}
	return &SecretKey{name: name, key: priv, sk: sk}, nil
}

// LoadSecretKeyFile reads a secret key file ("NAME:BASE64", a trailing
// newline is fine). Unless allowInsecure, a file that group or others may
// access is refused. Errors name the file but never contain key material.
func LoadSecretKeyFile(file string, allowInsecure bool) (*SecretKey, error) {
	if err := CheckSecretFile(file, allowInsecure); err != nil {
		return nil, err
	}
	data, err := fsutil.ReadFile(file, fsutil.MaxSmallState)
	if err != nil {
		return nil, err
	}
	k, err := ParseSecretKey(trimKey(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return k, nil
}

// CheckSecretFile is the one check of a secret key file before it is
// read (the cache's signing_key, the release_key): a regular file that,
// unless allowInsecure, neither group nor others may access. The error
// names the file and the chmod to run.
func CheckSecretFile(file string, allowInsecure bool) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("secret key file %s is not a regular file", file)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && !allowInsecure {
		return fmt.Errorf("secret key file %s has mode %04o: it must not be accessible by group or others; run `chmod 600 %s`, or pass --allow-insecure-key", file, perm, file)
	}
	return nil
}

// GenerateKeyFile creates a key pair named name, writes the secret key to
// secretFile (mode 0600, atomically: a temporary file renamed into place;
// an existing file is not overwritten) and returns the public key.
func GenerateKeyFile(name, secretFile string) (PublicKey, error) {
	if err := validateKeyName(name); err != nil {
		return PublicKey{}, err
	}
	if _, err := os.Lstat(secretFile); err == nil {
		return PublicKey{}, fmt.Errorf("secret key file %s already exists", secretFile)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return PublicKey{}, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PublicKey{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(secretFile), ".tmp-"+filepath.Base(secretFile)+"-*")
	if err != nil {
		return PublicKey{}, err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; make sure whatever the umask.
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(name + ":" + base64.StdEncoding.EncodeToString(priv))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return PublicKey{}, fmt.Errorf("writing secret key file %s: %w", secretFile, err)
	}
	// Link, unlike rename, fails if secretFile appeared meanwhile.
	if err := os.Link(tmp.Name(), secretFile); err != nil {
		return PublicKey{}, fmt.Errorf("writing secret key file %s: %w", secretFile, err)
	}
	return PublicKey{Name: name, Key: pub}, nil
}

// validateKeyName checks a key name. The error does not quote the name:
// in a mangled secret key file it could be key material.
func validateKeyName(name string) error {
	if name == "" || strings.ContainsAny(name, ": \t\r\n") {
		return fmt.Errorf("key name must be non-empty, without ':' or white space")
	}
	return nil
}

// splitKey splits "NAME:BASE64" and decodes the base64; errors describe
// the problem without quoting the name or the data.
func splitKey(s string) (string, []byte, error) {
	name, b64, ok := strings.Cut(s, ":")
	if !ok {
		return "", nil, fmt.Errorf("expected NAME:BASE64, found no ':'")
	}
	if err := validateKeyName(name); err != nil {
		return "", nil, err
	}
	if b64 == "" {
		return "", nil, fmt.Errorf("no data after ':'")
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("data is not valid base64")
	}
	return name, data, nil
}

// trimKey drops the trailing newline (or CRLF) a key file may end with.
func trimKey(data []byte) string {
	return strings.TrimRight(string(data), "\r\n")
}
