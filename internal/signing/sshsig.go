package signing

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// The SSH signature format of OpenSSH's PROTOCOL.sshsig: what
// `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` and git
// (gpg.format=ssh) check.
const (
	sigMagic   = "SSHSIG"
	sigVersion = 1
	// ArmorBegin starts an armored SSH signature.
	ArmorBegin = "-----BEGIN SSH SIGNATURE-----"
	armorEnd   = "-----END SSH SIGNATURE-----"
	// armorWidth is ssh-keygen's line width for the base64 body.
	armorWidth = 70
	sigHash    = "sha512"
)

// Namespaces of the SSH signatures releng makes: "file" for files
// (ssh-keygen's convention), "git" for tags (git's).
const (
	NamespaceFile = "file"
	NamespaceGit  = "git"
)

// signedData is what an SSH signature signs (PROTOCOL.sshsig): the magic,
// the namespace, a reserved string and the hash of the message.
func signedData(namespace, hashAlg string, message []byte) ([]byte, error) {
	var h []byte
	switch hashAlg {
	case "sha512":
		s := sha512.Sum512(message)
		h = s[:]
	case "sha256":
		s := sha256.Sum256(message)
		h = s[:]
	default:
		return nil, fmt.Errorf("hash algorithm %q is not one of sha256, sha512", hashAlg)
	}
	return append([]byte(sigMagic), ssh.Marshal(struct {
		Namespace, Reserved, Hash string
		H                         []byte
	}{namespace, "", hashAlg, h})...), nil
}

// sigBlob is an SSH signature after the magic preamble.
type sigBlob struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	Hash      string
	Signature []byte
}

// Sign returns the armored SSH signature of message in namespace, as
// `ssh-keygen -Y sign -n NAMESPACE` writes it. ed25519 signatures are
// deterministic: the same key, namespace and message always give the
// same bytes.
func (k *PrivateKey) Sign(namespace string, message []byte) []byte {
	data, err := signedData(namespace, sigHash, message)
	if err != nil {
		panic("signing: " + err.Error()) // sigHash is supported
	}
	signer, err := ssh.NewSignerFromKey(k.key)
	if err != nil {
		panic("signing: ed25519 signer: " + err.Error())
	}
	sig, err := signer.Sign(rand.Reader, data)
	if err != nil {
		panic("signing: ed25519 signing cannot fail: " + err.Error())
	}
	blob := append([]byte(sigMagic), ssh.Marshal(sigBlob{
		Version: sigVersion, PublicKey: k.pub.ssh.Marshal(), Namespace: namespace, Hash: sigHash, Signature: ssh.Marshal(sig),
	})...)
	return armor(blob)
}

func armor(blob []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString(blob)
	var b bytes.Buffer
	b.WriteString(ArmorBegin + "\n")
	for len(b64) > armorWidth {
		b.WriteString(b64[:armorWidth] + "\n")
		b64 = b64[armorWidth:]
	}
	b.WriteString(b64 + "\n" + armorEnd + "\n")
	return b.Bytes()
}

// ErrBadSignature is wrapped by the errors of a signature that does not
// verify.
var ErrBadSignature = errors.New("bad signature")

// Verify checks the armored SSH signature sig of message in namespace
// against k. The error says what is wrong: not an SSH signature, another
// key (its fingerprint), another namespace, or a signature that does not
// match the message (wrapping ErrBadSignature in every case).
func (k PublicKey) Verify(namespace string, message, sig []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSignature, fmt.Sprintf(format, args...))
	}
	text := strings.TrimSpace(string(sig))
	body, ok := strings.CutPrefix(text, ArmorBegin)
	if !ok {
		return bad("not an SSH signature (no %s line)", ArmorBegin)
	}
	body, ok = strings.CutSuffix(body, armorEnd)
	if !ok {
		return bad("not an SSH signature (no %s line)", armorEnd)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		return bad("its body is not base64")
	}
	rest, ok := bytes.CutPrefix(raw, []byte(sigMagic))
	if !ok {
		return bad("not an SSH signature (no %s preamble)", sigMagic)
	}
	var blob sigBlob
	if err := ssh.Unmarshal(rest, &blob); err != nil {
		return bad("malformed: %v", err)
	}
	if blob.Version != sigVersion {
		return bad("version %d (want %d)", blob.Version, sigVersion)
	}
	signer, err := ssh.ParsePublicKey(blob.PublicKey)
	if err != nil {
		return bad("its public key is malformed")
	}
	if !bytes.Equal(signer.Marshal(), k.ssh.Marshal()) {
		return bad("made by key %s, not %s", ssh.FingerprintSHA256(signer), k.Fingerprint())
	}
	if blob.Namespace != namespace {
		return bad("namespace %q, not %q", blob.Namespace, namespace)
	}
	var s ssh.Signature
	if err := ssh.Unmarshal(blob.Signature, &s); err != nil {
		return bad("malformed signature field")
	}
	data, err := signedData(namespace, blob.Hash, message)
	if err != nil {
		return bad("%v", err)
	}
	if err := k.ssh.Verify(data, &s); err != nil {
		return bad("it does not match the signed content (changed since it was signed?)")
	}
	return nil
}

// SplitTag splits a git tag object (`git cat-file tag`) into the signed
// payload and the SSH signature git appended to it; sig is nil for a tag
// without an SSH signature.
func SplitTag(object []byte) (payload, sig []byte) {
	i := bytes.LastIndex(object, []byte("\n"+ArmorBegin+"\n"))
	if i < 0 {
		if bytes.HasPrefix(object, []byte(ArmorBegin+"\n")) {
			return nil, object
		}
		return object, nil
	}
	return object[:i+1], object[i+1:]
}

// VerifyTag checks the SSH signature of a git tag object against k.
func (k PublicKey) VerifyTag(object []byte) error {
	payload, sig := SplitTag(object)
	if sig == nil {
		if bytes.Contains(object, []byte("-----BEGIN PGP SIGNATURE-----")) {
			return fmt.Errorf("%w: signed with PGP, not with the release key (an SSH signature)", ErrBadSignature)
		}
		return fmt.Errorf("%w: the tag is not signed", ErrBadSignature)
	}
	return k.Verify(NamespaceGit, payload, sig)
}
