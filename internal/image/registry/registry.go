// Package registry is where images go (SPEC §8.5): a repository of an OCI
// distribution registry, spoken to through go-containerregistry's name,
// authn and transport packages (bearer tokens, Docker's config.json and
// credential helpers, containers' auth.json), or an OCI image layout
// directory (`oci:DIR`). Both implement Target, and one conformance suite
// runs against both. ParseDest is the one parser of destinations.
//
// The remote implementation checks for a blob (HEAD) before sending it,
// mounts blobs from other repositories of the same registry, uploads big
// blobs in chunks, and can stream a blob whose digest is only known once
// it has been sent. It counts what it sends. Both implementations also
// read back what they hold (blobs, manifests, tags), for plans and verify;
// opened with Options.ReadOnly they only read.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/oci"
)

// Target is a repository that receives blobs, manifests and tags, and
// reads back what it holds.
type Target interface {
	// String names the destination: HOST[:PORT]/REPO, or oci:DIR.
	String() string
	// StatBlob returns the size of the blob with digest as the
	// destination holds it; found is false when it has none.
	StatBlob(ctx context.Context, digest string) (size int64, found bool, err error)
	// ReadBlob opens the bytes of the blob with digest as stored; the
	// error wraps ErrNotFound when there is none.
	ReadBlob(ctx context.Context, digest string) (io.ReadCloser, error)
	// Resolve returns the descriptor (media type, digest, size) of the
	// manifest or index that ref — a tag or a digest — names; found is
	// false when there is none.
	Resolve(ctx context.Context, ref string) (desc oci.Descriptor, found bool, err error)
	// Manifest returns the descriptor and the bytes of the manifest or
	// index ref names, as stored (at most MaxManifest bytes; the caller
	// checks them against the digest it expects); the error wraps
	// ErrNotFound when there is none.
	Manifest(ctx context.Context, ref string) (oci.Descriptor, []byte, error)
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
	// ReadOnly opens the destination to read it only: an oci: directory
	// that does not exist is not created (it reads as empty), a registry
	// is asked for pull access; writes fail.
	ReadOnly bool
}

// DefaultChunkSize is the PATCH size of chunked uploads.
const DefaultChunkSize = 8 << 20

// OCIPrefix marks an OCI layout destination.
const OCIPrefix = "oci:"

// MaxManifest bounds the manifests and indexes read back.
const MaxManifest = fsutil.MaxManifestJSON

// ErrNotFound is wrapped by the errors of reads of something a destination
// does not hold.
var ErrNotFound = errors.New("not found")

// Dest is a parsed destination: exactly one field is set.
type Dest struct {
	// Dir is the absolute directory of an OCI layout (oci:DIR).
	Dir string
	// Repository is HOST[:PORT]/REPO of a registry, as written.
	Repository string
}

// ParseDest parses a destination as users write it — `oci:DIR` or
// `HOST[:PORT]/REPO` — and is the one place that reads the oci: prefix. A
// relative DIR is resolved against root (the project root; the working
// directory when root is ""), so the Dest always names an absolute
// directory. A repository with a scheme, a tag or a digest is refused.
func ParseDest(dest, root string) (Dest, error) {
	if dir, ok := strings.CutPrefix(dest, OCIPrefix); ok {
		if dir == "" {
			return Dest{}, fmt.Errorf("%s needs a directory, e.g. %srelease/local/images", OCIPrefix, OCIPrefix)
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return Dest{}, fmt.Errorf("%s%s: %w", OCIPrefix, dir, err)
		}
		return Dest{Dir: abs}, nil
	}
	if err := checkRepository(dest); err != nil {
		return Dest{}, err
	}
	return Dest{Repository: dest}, nil
}

// String is the destination as the user would paste it: oci:/ABS/DIR or
// HOST[:PORT]/REPO.
func (d Dest) String() string {
	if d.Dir != "" {
		return OCIPrefix + d.Dir
	}
	return d.Repository
}

// checkRepository checks HOST[:PORT]/REPO.
func checkRepository(ref string) error {
	if strings.Contains(ref, "://") {
		return fmt.Errorf("%s: write the repository as HOST[:PORT]/REPO, without a scheme (plain HTTP: insecure = true)", ref)
	}
	if i := strings.LastIndexByte(ref, '/'); strings.ContainsAny(ref[i+1:], ":@") {
		return fmt.Errorf("%s: a destination is a repository without tag or digest; give tags with --tag (or tags = [...] in releng.toml)", ref)
	}
	if _, err := name.NewRepository(ref); err != nil {
		return fmt.Errorf("%s: not a repository (HOST[:PORT]/REPO or %sDIR): %v", ref, OCIPrefix, err)
	}
	return nil
}

// Open returns the Target for ref: `oci:DIR` or `HOST[:PORT]/REPO`
// (ParseDest; a relative DIR is taken from the working directory).
func Open(ctx context.Context, ref string, opts Options) (Target, error) {
	d, err := ParseDest(ref, "")
	if err != nil {
		return nil, err
	}
	if d.Dir != "" {
		if opts.ReadOnly {
			return OpenDirReadOnly(d.Dir)
		}
		return OpenDir(d.Dir)
	}
	return OpenRemote(ctx, d.Repository, opts)
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
