// Package layer writes the layers of an image reproducibly, byte for byte
// (SPEC §8.3): tar streams of store paths and of the top layer (root tree,
// tmp dirs, Nix database), compressed deterministically, with their digests
// computed on the way.
//
// Tar entries have absolute names, come sorted by name depth first, with
// /nix and /nix/store (mode 0755) first in every store layer; mtime is
// 1970-01-01T00:00:01Z, uid and gid 0, no user or group names; hard links
// are written as regular files and symbolic links as they are in the store.
// Go's archive/tar chooses between USTAR and PAX. Nothing about the machine
// (time, CPU count, temp directories, file order on disk) reaches the bytes.
package layer

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/releng-project/releng/internal/nar"
)

// FormatVersion changes whenever the bytes of a layer for the same input
// change (tar layout, compression settings). Layer digest caches key on it.
const FormatVersion = "releng-layer-3"

// Epoch is the mtime of every entry: 1970-01-01T00:00:01Z.
var Epoch = time.Unix(1, 0).UTC()

// copyBuffers avoid a 32 KiB allocation per file copied.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// StoreDir is where store paths are inside an image.
const StoreDir = "/nix/store"

func dirHeader(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimSuffix(name, "/") + "/", Mode: mode, ModTime: Epoch}
}

// tarMode converts a file mode to the tar mode bits (permissions, setuid,
// setgid, sticky).
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// WriteStorePaths writes the layer tar of store paths: /nix, /nix/store,
// then each path's tree, paths in name order. physical is the directory
// the paths are read from (the store directory on this machine, usually
// /nix/store); paths are absolute store paths or base names.
func WriteStorePaths(w io.Writer, physical string, paths []string) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"/nix", StoreDir} {
		if err := tw.WriteHeader(dirHeader(d, 0o755)); err != nil {
			return err
		}
	}
	bases := make([]string, len(paths))
	for i, p := range paths {
		bases[i] = path.Base(p)
	}
	sort.Strings(bases)
	for i := 1; i < len(bases); i++ {
		if bases[i-1] == bases[i] {
			return fmt.Errorf("store path %s listed twice in one layer", bases[i])
		}
	}
	for _, b := range bases {
		src := filepath.Join(physical, b)
		st, err := os.Lstat(src)
		if err != nil {
			return fmt.Errorf("read %s for an image layer: %w", src, err)
		}
		if err := addTree(tw, src, StoreDir+"/"+b, st.Mode().Type()); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addTree writes src (file, directory or symlink, as typ says) as entry
// name, and a directory's entries below it, sorted by name. Files are read
// as NARs are (nar.OpenFile, nar.ReadDir: plain system calls on Linux, no
// lstat per entry).
func addTree(tw *tar.Writer, src, name string, typ fs.FileMode) error {
	switch typ {
	case 0:
		return addFile(tw, src, name)
	case fs.ModeSymlink:
		target, err := os.Readlink(src)
		if err != nil {
			return fmt.Errorf("read symlink %s: %w", src, err)
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: Epoch})
	case fs.ModeDir:
		st, err := os.Lstat(src)
		if err != nil {
			return fmt.Errorf("read %s for an image layer: %w", src, err)
		}
		if err := tw.WriteHeader(dirHeader(name, tarMode(st.Mode()))); err != nil {
			return err
		}
		entries, err := nar.ReadDir(src)
		if err != nil {
			return fmt.Errorf("read directory %s: %w", src, err)
		}
		slices.SortFunc(entries, func(a, b nar.DirEntry) int { return strings.Compare(a.Name, b.Name) })
		for _, e := range entries {
			if err := addTree(tw, filepath.Join(src, e.Name), name+"/"+e.Name, e.Type); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s is a %s; a layer holds only files, directories and symbolic links", src, typ)
}

func addFile(tw *tar.Writer, src, name string) error {
	f, err := nar.OpenFile(src)
	if err != nil {
		return fmt.Errorf("read %s for an image layer: %w", src, err)
	}
	defer f.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: f.Size, Mode: tarMode(f.Mode), ModTime: Epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	buf := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(tw, io.LimitReader(f, f.Size), *buf)
	copyBuffers.Put(buf)
	if err != nil {
		return fmt.Errorf("read %s for an image layer: %w", src, err)
	}
	if n != f.Size {
		return fmt.Errorf("%s changed size while it was read (%d bytes, then %d): store paths must not change", src, f.Size, n)
	}
	return nil
}

// File is a file the top layer holds that does not come from the store
// (the Nix database).
type File struct {
	Name string // absolute path in the image
	Mode int64
	Data []byte
}

// Top is what goes into the top layer.
type Top struct {
	// RootTree is a directory whose contents are copied to /, "" for none.
	RootTree string
	// TmpDirs are created with mode 1777, and their parents with 0755.
	TmpDirs []string
	// Files are added with their parents (mode 0755).
	Files []File
}

type topNode struct {
	hdr      tar.Header
	src      string // regular file from the root tree
	data     []byte // synthetic file
	children map[string]*topNode
}

// WriteTop writes the top layer's tar.
func WriteTop(w io.Writer, top Top) error {
	root := &topNode{children: map[string]*topNode{}}
	if top.RootTree != "" {
		st, err := os.Stat(top.RootTree)
		if err != nil {
			return fmt.Errorf("image root: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("image root %s is not a directory: its contents are copied to / (use a buildEnv or a derivation that makes a directory)", top.RootTree)
		}
		if err := loadTree(root, top.RootTree, ""); err != nil {
			return err
		}
	}
	for _, d := range top.TmpDirs {
		n, err := ensureDir(root, d, "tmp_dirs")
		if err != nil {
			return err
		}
		n.hdr.Mode = 0o1777
	}
	for _, f := range top.Files {
		dir, base := path.Split(path.Clean(f.Name))
		parent, err := ensureDir(root, dir, f.Name)
		if err != nil {
			return err
		}
		if prev, ok := parent.children[base]; ok && prev.hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s: the image root already has it as something else than a file", f.Name)
		}
		parent.children[base] = &topNode{
			hdr:  tar.Header{Typeflag: tar.TypeReg, Name: path.Clean(f.Name), Size: int64(len(f.Data)), Mode: f.Mode, ModTime: Epoch},
			data: f.Data,
		}
	}
	tw := tar.NewWriter(w)
	if err := writeTopNode(tw, root); err != nil {
		return err
	}
	return tw.Close()
}

// loadTree reads the metadata of the tree at src into n; rel is the path
// in the image ("" for /).
func loadTree(n *topNode, src, rel string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read image root directory %s: %w", src, err)
	}
	for _, e := range entries {
		p := filepath.Join(src, e.Name())
		name := rel + "/" + e.Name()
		st, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("read image root %s: %w", p, err)
		}
		c := &topNode{}
		switch {
		case st.Mode().IsRegular():
			c.hdr = tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: tarMode(st.Mode()), ModTime: Epoch}
			c.src = p
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("read symlink %s: %w", p, err)
			}
			c.hdr = tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: Epoch}
		case st.IsDir():
			c.hdr = *dirHeader(name, tarMode(st.Mode()))
			c.children = map[string]*topNode{}
			if err := loadTree(c, p, name); err != nil {
				return err
			}
		default:
			return fmt.Errorf("image root %s is a %s; only files, directories and symbolic links can go into an image", p, st.Mode().Type())
		}
		n.children[e.Name()] = c
	}
	return nil
}

// ensureDir returns the directory node at abs, creating it and missing
// parents with mode 0755; what names the setting in errors.
func ensureDir(root *topNode, abs, what string) (*topNode, error) {
	clean := path.Clean("/" + abs)
	if !path.IsAbs(abs) || clean == "/" && abs != "/" {
		return nil, fmt.Errorf("%s: %q must be an absolute path below /", what, abs)
	}
	n := root
	if clean == "/" {
		return n, nil
	}
	name := ""
	for _, part := range strings.Split(strings.TrimPrefix(clean, "/"), "/") {
		name += "/" + part
		c, ok := n.children[part]
		if !ok {
			c = &topNode{hdr: *dirHeader(name, 0o755), children: map[string]*topNode{}}
			n.children[part] = c
		}
		if c.hdr.Typeflag != tar.TypeDir {
			return nil, fmt.Errorf("%s: %s is not a directory in the image root (it is a %s); remove it from the root or from %s", what, name, typeName(c.hdr.Typeflag), what)
		}
		n = c
	}
	return n, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeReg:
		return "file"
	}
	return "directory"
}

func writeTopNode(tw *tar.Writer, n *topNode) error {
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c := n.children[k]
		hdr := c.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			return err
		}
		switch {
		case c.data != nil:
			if _, err := tw.Write(c.data); err != nil {
				return err
			}
		case c.src != "":
			st, err := os.Lstat(c.src)
			if err != nil {
				return err
			}
			if st.Size() != hdr.Size {
				return fmt.Errorf("%s changed size while the image was built", c.src)
			}
			f, err := os.Open(c.src)
			if err != nil {
				return err
			}
			buf := copyBuffers.Get().(*[]byte)
			_, err = io.CopyBuffer(tw, io.LimitReader(f, hdr.Size), *buf)
			copyBuffers.Put(buf)
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", c.src, err)
			}
		case hdr.Typeflag == tar.TypeDir:
			if err := writeTopNode(tw, c); err != nil {
				return err
			}
		}
	}
	return nil
}
