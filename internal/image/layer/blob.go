package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// Digests describe a layer blob: the compressed bytes (what registries
// store) and the uncompressed tar (the config's diff_id).
type Digests struct {
	Digest   string `json:"digest"` // sha256:HEX of the compressed blob
	Size     int64  `json:"size"`
	DiffID   string `json:"diff_id"` // sha256:HEX of the tar
	DiffSize int64  `json:"diff_size"`
}

// hashCounter hashes and counts what is written to it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: sha256.New()} }

func (c *hashCounter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *hashCounter) digest() string { return "sha256:" + hex.EncodeToString(c.h.Sum(nil)) }

// Build runs write to produce a tar stream, compresses it with c into w
// (which may be io.Discard to compute digests only) and returns the
// digests of both forms.
func Build(w io.Writer, c Compression, write func(tar io.Writer) error) (Digests, error) {
	out := newHashCounter()
	comp, err := NewCompressor(io.MultiWriter(w, out), c)
	if err != nil {
		return Digests{}, err
	}
	diff := newHashCounter()
	werr := write(io.MultiWriter(comp, diff))
	cerr := comp.Close()
	if werr != nil {
		return Digests{}, werr
	}
	if cerr != nil {
		return Digests{}, cerr
	}
	return Digests{Digest: out.digest(), Size: out.n, DiffID: diff.digest(), DiffSize: diff.n}, nil
}

// Compress compresses an existing tar stream r with c into w; the
// digests are those of Build.
func Compress(w io.Writer, c Compression, r io.Reader) (Digests, error) {
	return Build(w, c, func(t io.Writer) error {
		_, err := io.Copy(t, r)
		return err
	})
}
