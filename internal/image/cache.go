package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/oci"
)

// Cache remembers, on this machine, the digests of the layers releng made
// — keyed by the layer's store paths, its options and the releng version —
// and which repositories hold which blobs (for cross-repository mounts).
// It is only an optimisation: a missing or wrong entry costs time, never
// correctness (registries check every digest).
type Cache struct {
	// Dir is the cache directory; "" disables the cache.
	Dir string
}

// layerKey derives a cache key from the parts that decide a layer's bytes.
func layerKey(relengVersion string, parts ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "releng image layer\n%s\n%s\n", layer.FormatVersion, versionKey(relengVersion))
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// versionKey is the releng version; a development build (no version
// stamped) adds its executable's size and time, so that a rebuilt binary
// never trusts what an older one cached.
func versionKey(v string) string {
	if v != "" && v != "dev" && !strings.HasSuffix(v, "-dev") {
		return v
	}
	exe, err := os.Executable()
	if err != nil {
		return v + "/unknown"
	}
	st, err := os.Stat(exe)
	if err != nil {
		return v + "/unknown"
	}
	return fmt.Sprintf("%s/%d/%d", v, st.Size(), st.ModTime().UnixNano())
}

func (c *Cache) layerFile(key string) string {
	return filepath.Join(c.Dir, "layers", key[:2], key+".json")
}

// Get returns the digests cached for key.
func (c *Cache) Get(key string) (layer.Digests, bool) {
	var d layer.Digests
	if c == nil || c.Dir == "" {
		return d, false
	}
	data, err := fsutil.ReadFile(c.layerFile(key), fsutil.MaxSmallState)
	if err != nil || json.Unmarshal(data, &d) != nil || d.Digest == "" || d.DiffID == "" {
		return layer.Digests{}, false
	}
	return d, true
}

// Put records the digests of key. Failures are ignored: the cache is an
// optimisation.
func (c *Cache) Put(key string, d layer.Digests) {
	if c == nil || c.Dir == "" {
		return
	}
	data, err := json.Marshal(d)
	if err != nil {
		return
	}
	_ = fsutil.WriteFileAtomic(c.layerFile(key), data, 0o644)
}

func (c *Cache) locationFile(digest string) string {
	h := oci.Hex(digest)
	return filepath.Join(c.Dir, "blobs", h[:2], h)
}

// Locations lists the repositories (HOST/REPO) known to hold the blob.
func (c *Cache) Locations(digest string) []string {
	if c == nil || c.Dir == "" || len(oci.Hex(digest)) < 2 {
		return nil
	}
	// A record over the cap (or not a regular file) counts as none: the
	// cache is an optimisation.
	data, err := fsutil.ReadFile(c.locationFile(digest), fsutil.MaxSmallState)
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// AddLocation records that repo (HOST/REPO) holds the blob.
func (c *Cache) AddLocation(digest, repo string) {
	if c == nil || c.Dir == "" || len(oci.Hex(digest)) < 2 {
		return
	}
	for _, l := range c.Locations(digest) {
		if l == repo {
			return
		}
	}
	p := c.locationFile(digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(repo + "\n")
}
