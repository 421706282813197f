package signing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
)

// cosign's key-based signatures of an image: beside the image, under the
// tag sha256-HEX.sig of its digest, an image manifest whose layers are
// simple-signing payloads naming the image's digest, each layer annotated
// with the base64 signature of its payload.
const (
	// MediaTypeSimpleSigning is the media type of a signature's payload.
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// AnnotationSignature holds the base64 signature of a payload.
	AnnotationSignature = "dev.cosignproject.cosign/signature"
	payloadType         = "cosign container image signature"
)

// CosignTag is the tag of the signatures of the image with digest.
func CosignTag(digest string) string {
	return strings.Replace(digest, ":", "-", 1) + ".sig"
}

// simpleSigning is the payload of a cosign signature; Go marshals it with
// the fields in cosign's order.
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// CosignSignature is a signature image ready to push: its blobs and its
// manifest, put under Tag.
type CosignSignature struct {
	Tag      string
	Payload  []byte
	Config   []byte
	Manifest []byte
}

// Digest is the digest of the signature's manifest.
func (s *CosignSignature) Digest() string { return oci.Digest(s.Manifest) }

// CosignSign makes the signature of the image (an index or manifest) with
// digest in repository (HOST/REPO, the payload's docker-reference). The
// result is deterministic: the same key, repository and digest give the
// same manifest, so a re-run finds it present.
func (k *PrivateKey) CosignSign(repository, digest string) (*CosignSignature, error) {
	var p simpleSigning
	p.Critical.Identity.DockerReference = repository
	p.Critical.Image.DockerManifestDigest = digest
	p.Critical.Type = payloadType
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(k.key, payload)
	pd := oci.Digest(payload)
	cfg, err := json.Marshal(oci.ConfigFile{
		Created: "0001-01-01T00:00:00Z",
		RootFS:  oci.RootFS{Type: "layers", DiffIDs: []string{pd}},
		History: []oci.History{{Created: "0001-01-01T00:00:00Z"}},
	})
	if err != nil {
		return nil, err
	}
	man, err := json.Marshal(oci.Manifest{
		SchemaVersion: 2,
		MediaType:     oci.MediaTypeManifest,
		Config:        oci.Descriptor{MediaType: oci.MediaTypeConfig, Digest: oci.Digest(cfg), Size: int64(len(cfg))},
		Layers: []oci.Descriptor{{MediaType: MediaTypeSimpleSigning, Digest: pd, Size: int64(len(payload)),
			Annotations: map[string]string{AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}}},
	})
	if err != nil {
		return nil, err
	}
	return &CosignSignature{Tag: CosignTag(digest), Payload: payload, Config: cfg, Manifest: man}, nil
}

// PushCosign puts a signature: its payload and config blobs, then its
// manifest under its tag.
func PushCosign(ctx context.Context, t registry.Target, s *CosignSignature) error {
	for _, b := range [][]byte{s.Payload, s.Config} {
		d := oci.Digest(b)
		if ok, err := t.HasBlob(ctx, d); err != nil {
			return fmt.Errorf("%s: blob %s: %w", t, d, err)
		} else if !ok {
			if err := t.PutBlob(ctx, d, int64(len(b)), bytes.NewReader(b)); err != nil {
				return fmt.Errorf("%s: blob %s: %w", t, d, err)
			}
		}
	}
	if err := t.PutManifest(ctx, s.Tag, oci.MediaTypeManifest, s.Manifest); err != nil {
		return fmt.Errorf("%s:%s: %w", t, s.Tag, err)
	}
	return nil
}

// ErrNoSignature is returned by CheckCosign when the signature tag is absent.
var ErrNoSignature = errors.New("no signature")

// CheckCosign reads the signatures of the image with digest in t and
// checks that one of them is k's signature of that digest, as `cosign
// verify --key` does: nil when one is, an error wrapping ErrNoSignature
// when the tag is absent, else an error saying what each layer lacks.
func (k PublicKey) CheckCosign(ctx context.Context, t registry.Target, digest string) error {
	tag := CosignTag(digest)
	_, body, err := t.Manifest(ctx, tag)
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("%w: %s has no tag %s", ErrNoSignature, t, tag)
	}
	if err != nil {
		return err
	}
	var m oci.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("%s:%s is not an image manifest: %v", t, tag, err)
	}
	var problems []string
	for i, l := range m.Layers {
		if err := k.checkLayer(ctx, t, l, digest); err != nil {
			problems = append(problems, fmt.Sprintf("layer %d: %v", i+1, err))
			continue
		}
		return nil
	}
	if len(problems) == 0 {
		problems = append(problems, "it has no layers")
	}
	return fmt.Errorf("%w: %s:%s holds no valid signature by %s: %s", ErrBadSignature, t, tag, k.Fingerprint(), strings.Join(problems, "; "))
}

func (k PublicKey) checkLayer(ctx context.Context, t registry.Target, l oci.Descriptor, digest string) error {
	if l.MediaType != MediaTypeSimpleSigning {
		return fmt.Errorf("media type %s, not a simple-signing payload", l.MediaType)
	}
	sig, err := base64.StdEncoding.DecodeString(l.Annotations[AnnotationSignature])
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("no base64 %s annotation", AnnotationSignature)
	}
	if l.Size > fsutil.MaxManifestJSON {
		return fmt.Errorf("payload of %d bytes, over the %d bytes a payload may have", l.Size, fsutil.MaxManifestJSON)
	}
	rc, err := t.ReadBlob(ctx, l.Digest)
	if err != nil {
		return fmt.Errorf("payload %s: %w", l.Digest, err)
	}
	defer rc.Close()
	payload, err := fsutil.ReadAllLimited(rc, "signature payload "+l.Digest, fsutil.MaxManifestJSON)
	if err != nil {
		return err
	}
	if oci.Digest(payload) != l.Digest {
		return fmt.Errorf("payload %s: its bytes hash to %s", l.Digest, oci.Digest(payload))
	}
	if !ed25519.Verify(k.key, payload, sig) {
		return errors.New("the signature does not match its payload with this key")
	}
	var p simpleSigning
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("payload is not simple-signing JSON: %v", err)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != digest {
		return fmt.Errorf("it signs %s, not %s", got, digest)
	}
	if p.Critical.Type != payloadType {
		return fmt.Errorf("payload type %q, not %q", p.Critical.Type, payloadType)
	}
	return nil
}
