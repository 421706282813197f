package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/oci"
)

// Limits on what Inspect accepts.
const (
	// MaxDocument bounds manifest.json and the image config (a tar entry
	// claiming more is not read into memory).
	MaxDocument = fsutil.MaxManifestJSON
	// maxKept bounds all the small documents kept while reading.
	maxKept = 32 << 20
	// MaxEntries bounds the number of entries of an archive.
	MaxEntries = 1 << 16
	// maxName bounds entry names and link targets.
	maxName = 4096
	// maxLinkHops bounds chains of symbolic links between entries.
	maxLinkHops = 16
)

// Layer is a layer of an archive.
type Layer struct {
	// Entry is the archive entry holding the layer's bytes, links followed.
	Entry string
	// Size and Digest are those of the bytes as stored.
	Size   int64
	Digest string
	// DiffID and DiffSize are those of the uncompressed tar.
	DiffID   string
	DiffSize int64
	// Compression is "", "gzip" or "zstd".
	Compression string
}

// Archive is a validated docker-archive holding one image.
type Archive struct {
	Path     string
	RepoTags []string
	// Config is the image config as stored; ConfigFile its parsed form.
	Config     []byte
	ConfigFile oci.ConfigFile
	Platform   oci.Platform
	Layers     []Layer
}

// Error is a problem with an archive: it names the file and, when there is
// one, the entry.
type Error struct {
	File  string
	Entry string
	Msg   string
}

func (e *Error) Error() string {
	if e.Entry != "" {
		return fmt.Sprintf("docker-archive %s: entry %q: %s", e.File, e.Entry, e.Msg)
	}
	return fmt.Sprintf("docker-archive %s: %s", e.File, e.Msg)
}

type entry struct {
	typ    byte
	target string // resolved target of a link
	size   int64
	digest string
	diffID string
	diffSz int64
	comp   string
	inner  error  // a problem inside the entry's tar, reported if it is a layer
	doc    []byte // content of a small JSON document
}

// open returns the tar stream of an archive, gzipped, zstd-compressed or
// plain.
func open(file string) (*os.File, io.Reader, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, &Error{File: file, Msg: "not a gzip file: " + err.Error()}
		}
		return f, zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			f.Close()
			return nil, nil, &Error{File: file, Msg: err.Error()}
		}
		return f, zr.IOReadCloser(), nil
	}
	return f, br, nil
}

// cleanName checks an entry name and returns it cleaned ("" for the root).
func cleanName(name string) (string, error) {
	if name == "" || len(name) > maxName || strings.ContainsRune(name, 0) {
		return "", errors.New("empty, overlong or NUL-containing name")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute name: it would be written outside the target directory")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New(`name contains "..": it would be written outside the target directory`)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// Inspect reads and validates the archive at file.
func Inspect(file string) (*Archive, error) {
	f, r, err := open(file)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, &Error{File: file, Msg: err.Error()}
	}
	defer f.Close()
	bad := func(name, format string, args ...any) error {
		return &Error{File: file, Entry: name, Msg: fmt.Sprintf(format, args...)}
	}
	entries := map[string]*entry{}
	kept := 0
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bad("", "not a valid tar archive: %v", err)
		}
		if n >= MaxEntries {
			return nil, bad("", "more than %d entries; an image archive has a handful", MaxEntries)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, bad(hdr.Name, "%v", err)
		}
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparse(hdr) {
			return nil, bad(hdr.Name, "sparse file (claims %d bytes): image archives have none, refusing it", hdr.Size)
		}
		if name == "" {
			continue
		}
		if _, dup := entries[name]; dup {
			return nil, bad(hdr.Name, "appears twice; an extractor would keep either copy")
		}
		e := &entry{typ: hdr.Typeflag, size: hdr.Size}
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeSymlink:
			t := hdr.Linkname
			if len(t) > maxName || t == "" {
				return nil, bad(hdr.Name, "bad symbolic link target")
			}
			if path.IsAbs(t) {
				return nil, bad(hdr.Name, "absolute symbolic link to %q would point outside the archive", t)
			}
			res := path.Clean(path.Join(path.Dir(name), t))
			if res == ".." || strings.HasPrefix(res, "../") {
				return nil, bad(hdr.Name, "symbolic link to %q points outside the archive", t)
			}
			e.target = res
		case tar.TypeLink:
			t, err := cleanName(hdr.Linkname)
			if err != nil || t == "" {
				return nil, bad(hdr.Name, "hard link to %q: %v", hdr.Linkname, err)
			}
			prev, ok := entries[t]
			if !ok || prev.typ != tar.TypeReg {
				return nil, bad(hdr.Name, "hard link to %q, which is not an earlier file of the archive", hdr.Linkname)
			}
			e.target = t
		case tar.TypeReg:
			if hdr.Size < 0 {
				return nil, bad(hdr.Name, "negative size")
			}
			if err := hashEntry(e, tr, &kept); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, bad(hdr.Name, "truncated: it claims %d bytes but the archive ends first", hdr.Size)
				}
				return nil, bad(hdr.Name, "%v", err)
			}
		default:
			return nil, bad(hdr.Name, "is a %s; an image archive holds only files, directories and links", typeName(hdr.Typeflag))
		}
		entries[name] = e
	}

	// resolve follows links to a regular file.
	resolve := func(name string) (string, *entry, error) {
		c, err := cleanName(name)
		if err != nil || c == "" {
			return "", nil, bad(name, "bad name in manifest.json: %v", err)
		}
		for hop := 0; hop <= maxLinkHops; hop++ {
			e, ok := entries[c]
			if !ok {
				return "", nil, bad(name, "named in manifest.json but not in the archive")
			}
			switch e.typ {
			case tar.TypeReg:
				return c, e, nil
			case tar.TypeSymlink, tar.TypeLink:
				c = e.target
			default:
				return "", nil, bad(name, "named in manifest.json but is not a file")
			}
		}
		return "", nil, bad(name, "more than %d links", maxLinkHops)
	}

	_, me, err := resolve("manifest.json")
	if err != nil {
		return nil, bad("", "no manifest.json: not a docker-archive (docker save / dockerTools output)")
	}
	if me.doc == nil {
		return nil, bad("manifest.json", "larger than %d bytes or not JSON", MaxDocument)
	}
	var manifests []dockerManifest
	if err := strictJSON(me.doc, &manifests); err != nil {
		return nil, bad("manifest.json", "not a docker-archive manifest: %v", err)
	}
	if len(manifests) != 1 {
		return nil, bad("manifest.json", "holds %d images; releng imports archives of exactly one image", len(manifests))
	}
	m := manifests[0]
	a := &Archive{Path: file, RepoTags: m.RepoTags}
	_, ce, err := resolve(m.Config)
	if err != nil {
		return nil, err
	}
	if ce.doc == nil {
		return nil, bad(m.Config, "image config larger than %d bytes or not JSON", MaxDocument)
	}
	a.Config = ce.doc
	if err := json.Unmarshal(ce.doc, &a.ConfigFile); err != nil {
		return nil, bad(m.Config, "image config is not valid JSON: %v", err)
	}
	cf := a.ConfigFile
	if cf.OS == "" || cf.Architecture == "" {
		return nil, bad(m.Config, "image config has no os or architecture")
	}
	a.Platform = oci.Platform{Architecture: cf.Architecture, OS: cf.OS, Variant: cf.Variant}
	if len(m.Layers) == 0 {
		return nil, bad("manifest.json", "the image has no layers")
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, bad(m.Config, "lists %d diff_ids for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	for i, l := range m.Layers {
		name, le, err := resolve(l)
		if err != nil {
			return nil, err
		}
		if le.inner != nil {
			return nil, bad(l, "layer %d: %v", i+1, le.inner)
		}
		if le.diffID != cf.RootFS.DiffIDs[i] {
			return nil, bad(l, "layer %d has diff_id %s but the config says %s: the archive is corrupt", i+1, le.diffID, cf.RootFS.DiffIDs[i])
		}
		a.Layers = append(a.Layers, Layer{Entry: name, Size: le.size, Digest: le.digest, DiffID: le.diffID, DiffSize: le.diffSz, Compression: le.comp})
	}
	return a, nil
}

// strictJSON decodes data refusing unknown fields... of which docker
// archives have several (LayerSources); it only insists on valid JSON.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

func hasSparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeCont:
		return "contiguous file"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

// hashEntry reads a regular entry: its digest, and if it is a (possibly
// compressed) tar, its diff ID and whether its entry names are safe. Small
// JSON documents are kept.
func hashEntry(e *entry, r io.Reader, kept *int) error {
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(r, h), 64<<10)
	first, _ := br.Peek(512)
	trimmed := bytes.TrimLeft(first, " \t\r\n")
	if e.size <= MaxDocument && len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && *kept+int(e.size) <= maxKept {
		doc, err := fsutil.ReadAllLimited(br, "JSON document", MaxDocument)
		if err != nil {
			return err
		}
		*kept += len(doc)
		e.doc = doc
		e.digest = hexDigest(h)
		e.diffID, e.diffSz = e.digest, int64(len(doc))
		return nil
	}
	var inner io.Reader = br
	switch {
	case bytes.HasPrefix(first, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			e.inner = fmt.Errorf("bad gzip data: %v", err)
			break
		}
		zr.Multistream(false)
		inner, e.comp = zr, "gzip"
	case bytes.HasPrefix(first, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			e.inner = fmt.Errorf("bad zstd data: %v", err)
			break
		}
		defer zr.Close()
		inner, e.comp = zr, "zstd"
	}
	if e.inner == nil {
		dh := sha256.New()
		cr := &counter{r: io.TeeReader(inner, dh)}
		e.inner = checkLayerTar(cr)
		if _, err := io.Copy(io.Discard, cr); err != nil && e.inner == nil {
			e.inner = fmt.Errorf("bad compressed data: %v", err)
		}
		e.diffID, e.diffSz = hexDigest(dh), cr.n
	}
	// Whatever follows (or all of it, if it did not decompress).
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	e.digest = hexDigest(h)
	if e.comp == "" {
		e.diffID = e.digest
	}
	return nil
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func hexDigest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// checkLayerTar reads a layer's tar headers: names with ".." (which a
// careless runtime would unpack outside the root) are refused. Layers may
// hold absolute names and absolute symbolic links: runtimes resolve those
// inside the container's root.
func checkLayerTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar layer: %v", err)
		}
		for _, n := range []string{h.Name, linkName(h)} {
			for _, part := range strings.Split(n, "/") {
				if part == ".." {
					return fmt.Errorf("layer entry %q contains \"..\"", h.Name)
				}
			}
		}
	}
}

func linkName(h *tar.Header) string {
	if h.Typeflag == tar.TypeLink {
		return h.Linkname
	}
	return ""
}

// Stream reads the archive again and calls fn with the bytes of each layer
// for which want returns true, once per distinct entry, in archive order.
// A layer whose bytes changed since Inspect is an error.
func (a *Archive) Stream(want func(Layer) bool, fn func(Layer, io.Reader) error) error {
	needed := map[string]Layer{}
	for _, l := range a.Layers {
		if want(l) {
			needed[l.Entry] = l
		}
	}
	if len(needed) == 0 {
		return nil
	}
	f, r, err := open(a.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(r)
	for len(needed) > 0 {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &Error{File: a.Path, Msg: fmt.Sprintf("changed since it was checked: %v", err)}
		}
		name, err := cleanName(hdr.Name)
		if err != nil || hdr.Typeflag != tar.TypeReg {
			continue
		}
		l, ok := needed[name]
		if !ok {
			continue
		}
		delete(needed, name)
		h := sha256.New()
		tee := io.TeeReader(tr, h)
		if err := fn(l, tee); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return &Error{File: a.Path, Entry: name, Msg: err.Error()}
		}
		if got := hexDigest(h); got != l.Digest {
			return &Error{File: a.Path, Entry: name, Msg: fmt.Sprintf("changed since it was checked (digest %s, was %s)", got, l.Digest)}
		}
	}
	if len(needed) > 0 {
		return &Error{File: a.Path, Msg: "changed since it was checked: layers are missing"}
	}
	return nil
}
