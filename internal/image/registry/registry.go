// Package registry is where images go (SPEC §8.5): a repository of an OCI
// distribution registry, spoken to through go-containerregistry's name,
// authn and transport packages (bearer tokens, Docker's config.json and
// credential helpers, containers' auth.json), or an OCI image layout
// directory (`oci:DIR`). Both implement Target, and one conformance suite
// runs against both.
//
// The remote implementation checks for a blob (HEAD) before sending it,
// mounts blobs from other repositories of the same registry, uploads big
// blobs in chunks, and can stream a blob whose digest is only known once
// it has been sent. It counts what it sends.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Target is a repository that receives blobs, manifests and tags.
type Target interface {
	// String names the destination as the user wrote it.
	String() string
	// HasBlob reports whether the blob with digest is there.
	HasBlob(ctx context.Context, digest string) (bool, error)
	// Mount tries to make the blob present by mounting it from one of the
	// repositories in from (HOST/REPO, same registry); false if none could.
	Mount(ctx context.Context, digest string, from []string) (bool, error)
	// PutBlob stores the size bytes read from r, which must have digest.
	PutBlob(ctx context.Context, digest string, size int64, r io.Reader) error
	// StreamBlob stores what write writes; write returns the digest of
	// what it wrote, which the target checks.
	StreamBlob(ctx context.Context, write func(io.Writer) (string, error)) (size int64, err error)
	// PutManifest stores a manifest or index body under ref: a digest
	// ("sha256:…", untagged) or a tag.
	PutManifest(ctx context.Context, ref, mediaType string, body []byte) error
	// CheckPush checks, without leaving anything behind, that the
	// credentials allow pushing here.
	CheckPush(ctx context.Context) error
	// Stats says what was sent so far.
	Stats() Stats
}

// Stats counts what a Target was sent.
type Stats struct {
	BlobsUploaded int   `json:"blobs_uploaded"`
	BlobsMounted  int   `json:"blobs_mounted"`
	BlobBytes     int64 `json:"blob_bytes"` // blob bytes sent
	Manifests     int   `json:"manifests"`
	Requests      int   `json:"requests"`
}

type counters struct {
	uploaded, mounted, manifests, requests atomic.Int64
	bytes                                  atomic.Int64
}

func (c *counters) stats() Stats {
	return Stats{
		BlobsUploaded: int(c.uploaded.Load()), BlobsMounted: int(c.mounted.Load()),
		BlobBytes: c.bytes.Load(), Manifests: int(c.manifests.Load()), Requests: int(c.requests.Load()),
	}
}

// Options configure Open.
type Options struct {
	// Insecure allows plain HTTP (always allowed for localhost and
	// 127.0.0.1, as Docker does).
	Insecure bool
	// Keychain finds credentials; nil means DefaultKeychain.
	Keychain authn.Keychain
	// Transport is the HTTP transport under authentication; nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
	// ChunkSize is the size of each PATCH of a chunked upload; blobs up
	// to this size go in one request. 0 means DefaultChunkSize.
	ChunkSize int64
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultChunkSize is the PATCH size of chunked uploads.
const DefaultChunkSize = 8 << 20

// OCIPrefix marks an OCI layout destination.
const OCIPrefix = "oci:"

// Open returns the Target for ref: `oci:DIR` or `HOST[:PORT]/REPO`.
func Open(ctx context.Context, ref string, opts Options) (Target, error) {
	if dir, ok := strings.CutPrefix(ref, OCIPrefix); ok {
		return OpenDir(dir)
	}
	return OpenRemote(ctx, ref, opts)
}

var digestRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidDigest checks a sha256 digest in OCI notation.
func ValidDigest(d string) error {
	if !digestRe.MatchString(d) {
		return fmt.Errorf("%q is not a sha256 digest (sha256: and 64 lowercase hex digits)", d)
	}
	return nil
}

var tagRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidTag checks a tag as registries accept it.
func ValidTag(tag string) error {
	if !tagRe.MatchString(tag) {
		return fmt.Errorf("tag %q: a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (pass another with --tag)", tag)
	}
	return nil
}

// ErrDigestMismatch is returned when the bytes sent do not have the
// digest they were announced with.
var ErrDigestMismatch = errors.New("digest mismatch")
