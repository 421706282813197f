// Package dir is a bucket.Bucket in a local directory: the built-in
// `local` environment's buckets, and a file:// Nix binary cache that stock
// Nix reads as it is.
//
// Objects are plain files at their key's path below the root; every access
// goes through an os.Root, so no key, symlink or upload id can reach
// outside it. Writes go to a temporary file in the object's own directory
// (".releng-tmp-…"), are fsynced and renamed over the key: a reader sees
// the old file or the whole new one. A writer holds a flock on its
// temporary file, so that Leftovers (bucket.Cleaner) finds those of a
// writer that was killed, and only those.
//
// Metadata — the SHA-256, Content-Type and Content-Encoding given or
// computed at Put — lives in one JSON record per object under the hidden
// directory .releng-meta/objects/ at the root, named by the SHA-256 of the
// key (so no key can collide with another's record). Nothing is added
// next to the objects, so Nix, a web server or `aws s3 sync` see only the
// objects. A record also holds the file's size, mtime, inode and ctime when
// it was written; a file changed since by anyone else no longer matches
// its record, and its SHA-256 is then reported as unknown rather than
// wrong. Stat never reads an object to hash it. List hides .releng-meta
// and .releng-tmp-* files; keys with a segment starting with ".releng-"
// are refused.
//
// Deleting an object removes the directories it leaves empty, so the tree
// looks like the equivalent S3 listing. A key cannot name both an object
// and a directory of objects ("a" and "a/b"); S3 allows it, a filesystem
// does not, and such a Put fails with an error saying so.
package dir

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/releng-project/releng/internal/bucket"
)

const (
	metaDir      = ".releng-meta"
	objectsDir   = metaDir + "/objects"
	tmpPrefix    = ".releng-tmp-"
	uploadPrefix = tmpPrefix + "up-"
	reserved     = ".releng-"
)

// Bucket is a directory bucket.
type Bucket struct {
	path string
	// PartSize is the smallest part size PutResumable chooses for a new
	// upload (default bucket.MinPartSize); parts matter little locally but
	// keep the resume protocol the same as S3's.
	PartSize int64
	// NoSync skips the fsync before each rename: a reader still sees the
	// old object or the whole new one, and a killed process loses
	// nothing written, but a power failure may. A file:// binary cache
	// uses it, as Nix's own file:// store does not fsync either.
	NoSync bool
	// NoRecords writes no metadata records: Put still returns the
	// object's SHA-256, but Stat and List report none, nor a content type
	// or encoding (readers of a file:// binary cache, Nix among them, look
	// at the files alone).
	NoRecords bool

	mu   sync.Mutex
	root *os.Root
}

var _ bucket.Bucket = (*Bucket)(nil)

// New returns the bucket rooted at the absolute directory path. The
// directory is created on the first write; until then the bucket is
// empty.
func New(dir string) (*Bucket, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("directory bucket %q: path is not absolute", dir)
	}
	return &Bucket{path: filepath.Clean(dir)}, nil
}

// NewNixCache returns the bucket rooted at dir laid out as Nix's own
// file:// binary cache store writes one: no fsync before each rename
// (NoSync) and no metadata records (NoRecords), so the directory holds the
// cache's files alone. The SHA-256 of an object is then known only by
// reading it back (HashObject).
func NewNixCache(dir string) (*Bucket, error) {
	b, err := New(dir)
	if err != nil {
		return nil, err
	}
	b.NoSync, b.NoRecords = true, true
	return b, nil
}

// Path is the bucket's directory.
func (b *Bucket) Path() string { return b.path }

// String is the file:// URL of the directory.
func (b *Bucket) String() string { return "file://" + filepath.ToSlash(b.path) }

// open returns the os.Root of the directory, creating the directory when
// create is set. Without create, a missing directory gives fs.ErrNotExist.
func (b *Bucket) open(create bool) (*os.Root, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.root != nil {
		return b.root, nil
	}
	if create {
		if err := os.MkdirAll(b.path, 0o755); err != nil {
			return nil, err
		}
	}
	r, err := os.OpenRoot(b.path)
	if err != nil {
		return nil, err
	}
	b.root = r
	return r, nil
}

// Close releases the directory handle; the bucket reopens it if used again.
func (b *Bucket) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.root == nil {
		return nil
	}
	err := b.root.Close()
	b.root = nil
	return err
}

func (b *Bucket) fail(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return &bucket.Error{Op: op, URL: bucket.ObjectURL(b, key), Err: err}
}

func checkKey(key string) error {
	if err := bucket.ValidateKey(key); err != nil {
		return err
	}
	return checkReserved(key)
}

func checkReserved(key string) error {
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, reserved) {
			return fmt.Errorf("%w %q: segment %q is reserved for releng's bookkeeping in directory buckets", bucket.ErrInvalidKey, key, seg)
		}
	}
	return nil
}

// notFound maps "no such file" (and "a parent is a file") to
// bucket.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return bucket.ErrNotFound
	}
	return err
}

// Stat implements bucket.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return bucket.ObjectInfo{}, b.fail("stat", key, err)
	}
	r, err := b.open(false)
	if err != nil {
		return bucket.ObjectInfo{}, b.fail("stat", key, notFound(err))
	}
	fi, err := r.Stat(key)
	if err != nil {
		return bucket.ObjectInfo{}, b.fail("stat", key, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return bucket.ObjectInfo{}, b.fail("stat", key, bucket.ErrNotFound)
	}
	info := bucket.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	b.addMeta(r, &info, fi)
	return info, nil
}

// Get implements bucket.Bucket.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, b.fail("get", key, err)
	}
	r, err := b.open(false)
	if err != nil {
		return nil, b.fail("get", key, notFound(err))
	}
	f, err := r.Open(key)
	if err != nil {
		return nil, b.fail("get", key, notFound(err))
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = bucket.ErrNotFound
		}
		return nil, b.fail("get", key, err)
	}
	return f, nil
}

// HashObject implements bucket.Hasher: it reads the file and returns its
// size and SHA-256, whatever its record says.
func (b *Bucket) HashObject(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	defer rc.Close()
	f := rc.(*os.File)
	fi, err := f.Stat()
	if err != nil {
		return bucket.ObjectInfo{}, b.fail("hash", key, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx: ctx, r: f})
	if err != nil {
		return bucket.ObjectInfo{}, b.fail("hash", key, err)
	}
	return bucket.ObjectInfo{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), ModTime: fi.ModTime()}, nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createTemp creates a new hidden temporary file in the directory of key,
// creating that directory when it is missing (and retrying if a concurrent
// Delete removed it as empty in between).
func createTemp(r *os.Root, key, prefix string) (*os.File, string, error) {
	dir := path.Dir(key)
	var lastErr error
	for attempt := range 6 {
		// The directory usually exists: try the file first, and make the
		// directory only when it is missing (MkdirAll through os.Root
		// costs a system call per path component).
		if dir != "." && attempt > 0 {
			if err := r.MkdirAll(dir, 0o755); err != nil {
				if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
					return nil, "", fmt.Errorf("a parent of %q is an object, and a directory bucket cannot hold both \"a\" and \"a/b\": %w", key, err)
				}
				return nil, "", err
			}
		}
		name := path.Join(dir, prefix+randomHex(12))
		f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			// Held until renamed or removed (leftovers.go).
			if err = hold(r, f, name); err == nil {
				return f, name, nil
			}
			f.Close()
			if errors.Is(err, errGone) {
				lastErr = err
				continue
			}
			r.Remove(name)
			return nil, "", err
		}
		lastErr = err
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, "", fmt.Errorf("a parent of %q is an object, and a directory bucket cannot hold both \"a\" and \"a/b\": %w", key, err)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil, "", lastErr
}

// commit fsyncs f (the temp file tmp; unless NoSync), renames it over key and records its
// metadata. On error the temp file is removed.
func (b *Bucket) commit(r *os.Root, f *os.File, tmp, key string, m record) (bucket.ObjectInfo, error) {
	ok := false
	defer func() {
		f.Close()
		if !ok {
			r.Remove(tmp)
		}
	}()
	if !b.NoSync {
		if err := f.Sync(); err != nil {
			return bucket.ObjectInfo{}, err
		}
	}
	if err := r.Rename(tmp, key); err != nil {
		if fi, serr := r.Lstat(key); serr == nil && fi.IsDir() {
			return bucket.ObjectInfo{}, fmt.Errorf("%q is a directory of other objects, and a directory bucket cannot hold both \"a\" and \"a/b\"", key)
		}
		return bucket.ObjectInfo{}, err
	}
	ok = true
	// Describe the inode we renamed, whatever happens to the path next.
	fi, err := f.Stat()
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	m.Key = key
	m.setFile(fi)
	if b.NoRecords {
		return m.info(fi), nil
	}
	if err := writeRecord(r, m); err != nil {
		// The object is in place; only its checksum will be unknown.
		// Remove a previous record so it cannot describe the new file.
		r.Remove(recordPath(key))
	}
	return m.info(fi), nil
}

// Put implements bucket.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	info, err := b.put(ctx, key, body, size, opts)
	return info, b.fail("put", key, err)
}

func (b *Bucket) put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return bucket.ObjectInfo{}, err
	}
	if err := bucket.ValidSHA256(opts.SHA256); err != nil {
		return bucket.ObjectInfo{}, err
	}
	r, err := b.open(true)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	f, tmp, err := createTemp(r, key, tmpPrefix)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	h := sha256.New()
	src := &bucket.SourceReader{R: body}
	var in io.Reader = ctxReader{ctx, src}
	if size >= 0 {
		in = io.LimitReader(in, size)
	}
	n, err := io.Copy(io.MultiWriter(f, h), in)
	extra := false
	if err == nil && size >= 0 {
		var one [1]byte
		m, perr := io.ReadFull(ctxReader{ctx, src}, one[:])
		extra = m > 0
		if perr != nil && perr != io.EOF && perr != io.ErrUnexpectedEOF {
			err = perr
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err == nil {
		err = bucket.CheckSize(size, n, extra)
	}
	if err == nil {
		err = bucket.CheckSHA256(opts.SHA256, sum)
	}
	if err != nil {
		f.Close()
		r.Remove(tmp)
		return bucket.ObjectInfo{}, err
	}
	return b.commit(r, f, tmp, key, record{SHA256: sum, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding})
}

// Delete implements bucket.Bucket.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return b.fail("delete", key, err)
	}
	r, err := b.open(false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return b.fail("delete", key, err)
	}
	fi, err := r.Lstat(key)
	if err != nil {
		if errors.Is(notFound(err), bucket.ErrNotFound) {
			return nil
		}
		return b.fail("delete", key, err)
	}
	if fi.IsDir() {
		return nil // not an object
	}
	if err := r.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return b.fail("delete", key, err)
	}
	r.Remove(recordPath(key))
	removeEmptyParents(r, path.Dir(key))
	removeEmptyParents(r, path.Dir(recordPath(key)))
	return nil
}

// removeEmptyParents removes dir and its parents while they are empty.
func removeEmptyParents(r *os.Root, dir string) {
	for dir != "." && dir != "/" && dir != "" {
		if r.Remove(dir) != nil {
			return
		}
		dir = path.Dir(dir)
	}
}

func hidden(name string) bool { return strings.HasPrefix(name, reserved) }

// List implements bucket.Bucket.
func (b *Bucket) List(ctx context.Context, prefix string, opts bucket.ListOptions) ([]bucket.ObjectInfo, error) {
	if err := bucket.ValidatePrefix(prefix); err != nil {
		return nil, b.fail("list", prefix, err)
	}
	if err := checkReserved(strings.TrimSuffix(prefix, "/")); err != nil {
		return nil, b.fail("list", prefix, err)
	}
	r, err := b.open(false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, b.fail("list", prefix, err)
	}
	out, err := b.list(ctx, r, prefix, opts)
	if err != nil {
		return nil, b.fail("list", prefix, err)
	}
	slices.SortFunc(out, func(a, b bucket.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (b *Bucket) list(ctx context.Context, r *os.Root, prefix string, opts bucket.ListOptions) ([]bucket.ObjectInfo, error) {
	fsys := r.FS()
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var out []bucket.ObjectInfo
	add := func(key string, fi fs.FileInfo) {
		info := bucket.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
		if opts.SHA256 {
			b.addMeta(r, &info, fi)
		}
		out = append(out, info)
	}
	if !opts.Recursive {
		entries, err := fs.ReadDir(fsys, start)
		if err != nil {
			if errors.Is(notFound(err), bucket.ErrNotFound) {
				return nil, nil
			}
			return nil, err
		}
		for _, e := range entries {
			if hidden(e.Name()) {
				continue
			}
			key := path.Join(start, e.Name())
			if !strings.HasPrefix(key, prefix) {
				continue
			}
			fi, err := fs.Stat(fsys, key) // follows symlinks inside the root
			if err != nil {
				continue
			}
			switch {
			case fi.IsDir():
				if has, err := hasObject(ctx, fsys, key); err != nil {
					return nil, err
				} else if has {
					out = append(out, bucket.ObjectInfo{Key: key + "/", IsPrefix: true})
				}
			case fi.Mode().IsRegular():
				add(key, fi)
			}
		}
		return out, nil
	}
	err := fs.WalkDir(fsys, start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(notFound(err), bucket.ErrNotFound) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != start && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := fs.Stat(fsys, p)
		if err != nil || !fi.Mode().IsRegular() {
			return nil // a dangling or escaping symlink, a socket…: not an object
		}
		add(p, fi)
		return nil
	})
	return out, err
}

// hasObject reports whether the tree at dir holds at least one object.
func hasObject(ctx context.Context, fsys fs.FS, dir string) (bool, error) {
	found := false
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p != dir && hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			if fi, err := fs.Stat(fsys, p); err == nil && fi.Mode().IsRegular() {
				found = true
				return fs.SkipAll
			}
		}
		return nil
	})
	return found, err
}

// record is an object's metadata record.
type record struct {
	Key             string `json:"key"`
	Size            int64  `json:"size"`
	SHA256          string `json:"sha256,omitempty"`
	ContentType     string `json:"content_type,omitempty"`
	ContentEncoding string `json:"content_encoding,omitempty"`
	MtimeNs         int64  `json:"mtime_ns"`
	Ino             uint64 `json:"ino,omitempty"`
	CtimeNs         int64  `json:"ctime_ns,omitempty"`
}

func (m *record) setFile(fi fs.FileInfo) {
	m.Size = fi.Size()
	m.MtimeNs = fi.ModTime().UnixNano()
	m.Ino, m.CtimeNs = fileID(fi)
}

// matches reports whether the record still describes the file fi.
func (m *record) matches(key string, fi fs.FileInfo) bool {
	ino, ctime := fileID(fi)
	return m.Key == key && m.Size == fi.Size() && m.MtimeNs == fi.ModTime().UnixNano() && m.Ino == ino && m.CtimeNs == ctime
}

func (m *record) info(fi fs.FileInfo) bucket.ObjectInfo {
	return bucket.ObjectInfo{Key: m.Key, Size: fi.Size(), SHA256: m.SHA256, ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, ModTime: fi.ModTime()}
}

func recordPath(key string) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return objectsDir + "/" + h[:2] + "/" + h[2:] + ".json"
}

func writeRecord(r *os.Root, m record) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	p := recordPath(m.Key)
	f, tmp, err := createTemp(r, p, tmpPrefix)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		r.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		r.Remove(tmp)
		return err
	}
	if err := r.Rename(tmp, p); err != nil {
		r.Remove(tmp)
		return err
	}
	return nil
}

// addMeta fills info from the object's record when it still describes fi.
func (b *Bucket) addMeta(r *os.Root, info *bucket.ObjectInfo, fi fs.FileInfo) {
	data, err := r.ReadFile(recordPath(info.Key))
	if err != nil {
		return
	}
	var m record
	if json.Unmarshal(data, &m) != nil || !m.matches(info.Key, fi) {
		return
	}
	info.SHA256, info.ContentType, info.ContentEncoding = m.SHA256, m.ContentType, m.ContentEncoding
}
