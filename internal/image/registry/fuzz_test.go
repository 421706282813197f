package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/testenv"
)

// digestPlaceholder in a fuzz input's index.json stands for the digest of
// the input's manifest blob, so that mutated manifests stay reachable.
const digestPlaceholder = "@DIGEST@"

// FuzzOCILayout feeds arbitrary index.json and manifest bytes to an OCI
// layout directory, the reader behind `oci:` destinations and the image
// checks: ReadIndex, Resolve and Manifest of a tag, then the manifest
// decoded as an image index or manifest as releng decodes them. An
// index.json that is refused is refused with an error naming it. A tag
// resolves only to an entry that carries it. A manifest is only ever read
// from a blob file inside the layout (a descriptor's digest never makes
// a path elsewhere), at most MaxManifest bytes. The descriptors it lists
// lead to blob paths inside the layout when their digests are valid.
// Writing a tag into an index.json ReadIndex accepted keeps the entries of
// the other tags and gives an index.json it accepts again.
func FuzzOCILayout(f *testing.F) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("1", 64) + `"]}}`)
	man, _ := json.Marshal(oci.Manifest{SchemaVersion: 2, MediaType: oci.MediaTypeManifest,
		Config: oci.Descriptor{MediaType: oci.MediaTypeConfig, Digest: oci.Digest(cfg), Size: int64(len(cfg))},
		Layers: []oci.Descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: "sha256:" + strings.Repeat("2", 64), Size: 10}}})
	idx, _ := json.Marshal(oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Manifests: []oci.Descriptor{
		{MediaType: oci.MediaTypeManifest, Digest: digestPlaceholder, Size: int64(len(man)), Annotations: map[string]string{oci.AnnotationRefName: "1.0"}},
		{MediaType: oci.MediaTypeManifest, Digest: "sha256:" + strings.Repeat("3", 64), Size: 5, Annotations: map[string]string{oci.AnnotationRefName: "latest"}},
	}})
	multi, _ := json.Marshal(oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Manifests: []oci.Descriptor{
		{MediaType: oci.MediaTypeManifest, Digest: oci.Digest(man), Size: int64(len(man)), Platform: &oci.Platform{Architecture: "arm64", OS: "linux", Variant: "v8"}}}})
	f.Add(idx, man)
	f.Add(idx, multi)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:../../../../etc/passwd","annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}`), man)
	f.Add([]byte(`{"manifests":[{"digest":"@DIGEST@","annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}`), []byte(`{"layers":[{"digest":"sha256:/etc/x"}]}`))
	f.Add([]byte(`null`), []byte(`{}`))
	base := f.TempDir()
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, index, manifest []byte) {
		dir := filepath.Join(base, "layout")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		d, err := OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		mdigest := oci.Digest(manifest)
		if err := os.WriteFile(d.BlobPath(mdigest), manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		index = bytes.ReplaceAll(index, []byte(digestPlaceholder), []byte(mdigest))
		indexPath := filepath.Join(dir, "index.json")
		if err := os.WriteFile(indexPath, index, 0o644); err != nil {
			t.Fatal(err)
		}
		limit := 64*uint64(len(index)+len(manifest)) + 1<<20
		var idx *oci.Index
		testenv.CheckAllocBytes(t, "ReadIndex", limit, func() { idx, err = d.ReadIndex() })
		if err != nil {
			if !strings.Contains(err.Error(), indexPath) {
				t.Fatalf("the error does not name index.json: %v", err)
			}
			return
		}
		desc, found, err := d.Resolve(ctx, "1.0")
		if err != nil {
			t.Fatalf("Resolve of a tag in an index.json ReadIndex accepted: %v", err)
		}
		if found && desc.Annotations[oci.AnnotationRefName] != "1.0" {
			t.Fatalf("tag 1.0 resolved to an entry for %q", desc.Annotations[oci.AnnotationRefName])
		}
		var body []byte
		testenv.CheckAllocBytes(t, "Manifest", limit, func() { desc, body, err = d.Manifest(ctx, "1.0") })
		if err == nil {
			blobs := filepath.Join(dir, "blobs", "sha256")
			p := d.BlobPath(desc.Digest)
			if ValidDigest(desc.Digest) != nil || !fsutil.Within(blobs, p) || p == blobs {
				t.Fatalf("read a manifest at %s, outside %s", p, blobs)
			}
			onDisk, rerr := os.ReadFile(p)
			if rerr != nil || !bytes.Equal(onDisk, body) || len(body) > MaxManifest {
				t.Fatalf("Manifest returned %d bytes that are not the blob at %s (%v)", len(body), p, rerr)
			}
			// Decoded as releng decodes a tag's document.
			var asIndex oci.Index
			var asManifest oci.Manifest
			var descs []oci.Descriptor
			if json.Unmarshal(body, &asIndex) == nil {
				descs = append(descs, asIndex.Manifests...)
			}
			if json.Unmarshal(body, &asManifest) == nil {
				descs = append(append(descs, asManifest.Config), asManifest.Layers...)
			}
			for _, l := range descs {
				if ValidDigest(l.Digest) == nil {
					if p := d.BlobPath(l.Digest); !fsutil.Within(blobs, p) || p == blobs {
						t.Fatalf("descriptor digest %q leads to %s, outside %s", l.Digest, p, blobs)
					}
				}
			}
		} else if errors.Is(err, ErrNotFound) && found && ValidDigest(desc.Digest) == nil {
			if _, serr := os.Stat(d.BlobPath(desc.Digest)); serr == nil {
				t.Fatalf("the blob of tag 1.0 exists but Manifest says: %v", err)
			}
		}
		// Writing a tag keeps the others.
		others := 0
		for _, m := range idx.Manifests {
			if m.Annotations[oci.AnnotationRefName] != "fuzz" {
				others++
			}
		}
		if err := d.PutManifest(ctx, "fuzz", oci.MediaTypeManifest, manifest); err != nil {
			t.Fatalf("PutManifest into an index.json ReadIndex accepted: %v", err)
		}
		after, err := d.ReadIndex()
		if err != nil {
			t.Fatalf("the index.json PutManifest wrote is refused: %v", err)
		}
		tagged := 0
		for _, m := range after.Manifests {
			if m.Annotations[oci.AnnotationRefName] == "fuzz" {
				tagged++
				if m.Digest != mdigest {
					t.Fatalf("tag fuzz names %s, not %s", m.Digest, mdigest)
				}
			}
		}
		if tagged != 1 || len(after.Manifests) != others+1 {
			t.Fatalf("after tagging: %d entries for the tag, %d entries (want %d)", tagged, len(after.Manifests), others+1)
		}
	})
}
