// Package signing signs releases (SPEC §11.1) with one ed25519 key per
// environment, the release_key: SSH signatures (PROTOCOL.sshsig, as
// `ssh-keygen -Y sign` writes them) of SHA256SUMS and of git tags, and
// cosign's key-based signatures of image indexes. The private key is an
// OpenSSH private key file, as `ssh-keygen -t ed25519` writes it, so git
// (gpg.format=ssh) and ssh-keygen can use the same file; the public key is
// an OpenSSH public key line ("ssh-ed25519 AAAA… comment"). Everything here
// is computed in Go; nothing here prints, and no error quotes key material.
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixstore"
)

// PublicKey is an ed25519 release public key.
type PublicKey struct {
	key ed25519.PublicKey
	ssh ssh.PublicKey
	// Comment is the comment of its OpenSSH line ("" when none).
	Comment string
}

// PrivateKey is an ed25519 release key, loaded from its file.
type PrivateKey struct {
	key  ed25519.PrivateKey
	pub  PublicKey
	File string
}

// String returns the OpenSSH public key line: "ssh-ed25519 BASE64[ COMMENT]".
func (k PublicKey) String() string {
	s := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k.ssh)), "\n")
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// Fingerprint is the key's SHA256 fingerprint as ssh-keygen -l prints it.
func (k PublicKey) Fingerprint() string { return ssh.FingerprintSHA256(k.ssh) }

// Equal reports whether k and o are the same key (comments aside).
func (k PublicKey) Equal(o PublicKey) bool { return k.key.Equal(o.key) }

// PEM returns the key as a PEM "PUBLIC KEY" block (PKIX), the form
// `cosign verify --key FILE` reads.
func (k PublicKey) PEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.key)
	if err != nil {
		// An ed25519 public key always marshals.
		panic("signing: marshal public key: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Public returns the public half.
func (k *PrivateKey) Public() PublicKey { return k.pub }

// ParsePublicKey parses an OpenSSH ed25519 public key line.
func ParsePublicKey(line string) (PublicKey, error) {
	pk, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return PublicKey{}, fmt.Errorf("not an OpenSSH public key line (ssh-ed25519 AAAA…): %v", err)
	}
	return fromSSH(pk, comment)
}

func fromSSH(pk ssh.PublicKey, comment string) (PublicKey, error) {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return PublicKey{}, fmt.Errorf("a %s key: release keys are ed25519", pk.Type())
	}
	ed, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return PublicKey{}, fmt.Errorf("a %s key: release keys are ed25519", pk.Type())
	}
	return PublicKey{key: ed, ssh: pk, Comment: comment}, nil
}

// LoadPublicKey reads a release_public_key setting: an OpenSSH public key
// line, or the name of a file holding one (resolved by abs).
func LoadPublicKey(value string, abs func(string) string) (PublicKey, error) {
	if strings.HasPrefix(strings.TrimSpace(value), "ssh-") {
		return ParsePublicKey(value)
	}
	file := abs(value)
	data, err := fsutil.ReadFile(file, fsutil.MaxSmallState)
	if err != nil {
		return PublicKey{}, err
	}
	k, err := ParsePublicKey(string(data))
	if err != nil {
		return PublicKey{}, fmt.Errorf("%s: %v", file, err)
	}
	return k, nil
}

// LoadPrivateKeyFile reads an unencrypted OpenSSH ed25519 private key
// file. Unless allowInsecure, a file group or others may access is refused
// (nixstore.CheckSecretFile, the cache key's check). Errors name the file
// and never quote its content.
func LoadPrivateKeyFile(file string, allowInsecure bool) (*PrivateKey, error) {
	if err := nixstore.CheckSecretFile(file, allowInsecure); err != nil {
		return nil, err
	}
	data, err := fsutil.ReadFile(file, fsutil.MaxSmallState)
	if err != nil {
		return nil, err
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("release key %s is protected by a passphrase, which releng cannot ask for: use a key without one (releng keys generate)", file)
	case err != nil:
		return nil, fmt.Errorf("release key %s is not an OpenSSH private key (write one with `releng keys generate`)", file)
	}
	var priv ed25519.PrivateKey
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		priv = *k
	case ed25519.PrivateKey:
		priv = k
	default:
		return nil, fmt.Errorf("release key %s is not an ed25519 key: release keys are ed25519 (releng keys generate)", file)
	}
	pk, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("release key %s: %v", file, err)
	}
	pub, err := fromSSH(pk, "")
	if err != nil {
		return nil, fmt.Errorf("release key %s: %v", file, err)
	}
	return &PrivateKey{key: priv, pub: pub, File: file}, nil
}

// Generate makes a key pair; comment goes into both halves (OpenSSH
// files carry one). It returns the private key file's bytes (an OpenSSH
// private key, unencrypted) and the public key.
func Generate(comment string) ([]byte, PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, PublicKey{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, PublicKey{}, err
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, PublicKey{}, err
	}
	p, err := fromSSH(pk, comment)
	return pem.EncodeToMemory(block), p, err
}

// KeyFiles are the files of a generated key pair.
type KeyFiles struct {
	// Private is the OpenSSH private key (mode 0600).
	Private string `json:"private_key_file"`
	// Public is its OpenSSH public key line (Private + ".pub").
	Public string `json:"public_key_file"`
	// Cosign is the public key as PEM (Private + ".cosign.pub"), for
	// `cosign verify --key`.
	Cosign string `json:"cosign_public_key_file"`
}

// GenerateFiles writes a new key pair: the private key to file (mode
// 0600), its public key line to file.pub and its PEM form to
// file.cosign.pub, each through fsutil.WriteAtomic. No existing file is
// replaced.
func GenerateFiles(file, comment string) (KeyFiles, PublicKey, error) {
	kf := KeyFiles{Private: file, Public: file + ".pub", Cosign: file + ".cosign.pub"}
	for _, f := range []string{kf.Private, kf.Public, kf.Cosign} {
		if _, err := os.Lstat(f); err == nil {
			return kf, PublicKey{}, fmt.Errorf("%s already exists: releng does not replace a key; move it away or choose another file", f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return kf, PublicKey{}, err
		}
	}
	priv, pub, err := Generate(comment)
	if err != nil {
		return kf, PublicKey{}, err
	}
	if err := fsutil.WriteFileAtomic(kf.Private, priv, 0o600); err != nil {
		return kf, PublicKey{}, err
	}
	if err := fsutil.WriteFileAtomic(kf.Public, []byte(pub.String()+"\n"), 0o644); err != nil {
		return kf, PublicKey{}, err
	}
	if err := fsutil.WriteFileAtomic(kf.Cosign, pub.PEM(), 0o644); err != nil {
		return kf, PublicKey{}, err
	}
	return kf, pub, nil
}
