package dir

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
)

// Every temporary file (".releng-tmp-…": a Put's, a record's, a
// resumable upload's staging file) is held with an exclusive flock by its
// writer from its creation until it is renamed over its key or removed.
// A killed writer lets go of it, so a temporary file nobody holds is a
// leftover, whatever its age — and one that a live releng holds (a
// concurrent `cache push`, which takes no environment lock) is not. A
// cleaner removes a file only while holding its lock itself; a writer that
// finds, once it holds the lock, that its name no longer leads to its file
// starts again under another name.

var (
	errHeld    = errors.New("held by a live process")
	errNoLocks = errors.New("file locks are not available on this system")
	errGone    = errors.New("removed before it was locked")
)

var _ bucket.Cleaner = (*Bucket)(nil)

// hold takes the writer's lock on f, just created at name.
func hold(r *os.Root, f *os.File, name string) error {
	if err := lockFile(f, true); err != nil {
		if errors.Is(err, errNoLocks) {
			return nil
		}
		return err
	}
	return sameFile(r, f, name)
}

// sameFile checks that name still leads to f.
func sameFile(r *os.Root, f *os.File, name string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	li, err := r.Lstat(name)
	if err != nil || !os.SameFile(fi, li) {
		return errGone
	}
	return nil
}

// Leftovers implements bucket.Cleaner: the temporary files that no live
// process holds in the directories of the keys of objs and of their
// metadata records (sizes do not matter here). Each Leftover's Key is the
// file's path below the root.
func (b *Bucket) Leftovers(ctx context.Context, objs []bucket.ObjectInfo) ([]bucket.Leftover, error) {
	r, err := b.open(false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, b.fail("list leftovers", "", err)
	}
	dirs := map[string]bool{}
	for _, o := range objs {
		if checkKey(o.Key) != nil {
			continue
		}
		dirs[path.Dir(o.Key)] = true
		dirs[path.Dir(recordPath(o.Key))] = true
	}
	var out []bucket.Leftover
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		entries, err := fs.ReadDir(r.FS(), d)
		if err != nil {
			if errors.Is(notFound(err), bucket.ErrNotFound) {
				continue
			}
			return nil, b.fail("list leftovers", d, err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), tmpPrefix) || !e.Type().IsRegular() {
				continue
			}
			name := path.Join(d, e.Name())
			l, err := probe(r, name)
			if err != nil {
				continue // held, gone, or not ours to judge
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// probe describes the temporary file name when no live process holds it.
func probe(r *os.Root, name string) (bucket.Leftover, error) {
	f, err := r.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return bucket.Leftover{}, err
	}
	defer f.Close()
	if err := lockFile(f, false); err != nil {
		return bucket.Leftover{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return bucket.Leftover{}, err
	}
	return bucket.Leftover{Key: name, Started: fi.ModTime(), Size: fi.Size()}, nil
}

// RemoveLeftover implements bucket.Cleaner: it removes the temporary file
// l.Key unless a live process holds it (then it is kept, not an error).
func (b *Bucket) RemoveLeftover(ctx context.Context, l bucket.Leftover) error {
	dir, base := path.Split(l.Key)
	if !strings.HasPrefix(base, tmpPrefix) || (dir != "" && bucket.ValidatePrefix(dir) != nil) || strings.Contains(base, "/") {
		return b.fail("remove leftover", l.Key, errors.New("not a temporary file of releng's"))
	}
	r, err := b.open(false)
	if err != nil {
		return nil
	}
	f, err := r.OpenFile(l.Key, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return b.fail("remove leftover", l.Key, err)
	}
	defer f.Close() // releases the lock after the removal
	if err := lockFile(f, false); err != nil {
		if errors.Is(err, errHeld) || errors.Is(err, errNoLocks) {
			return nil
		}
		return b.fail("remove leftover", l.Key, err)
	}
	if sameFile(r, f, l.Key) != nil {
		return nil // replaced meanwhile
	}
	if err := r.Remove(l.Key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return b.fail("remove leftover", l.Key, err)
	}
	removeEmptyParents(r, path.Dir(l.Key))
	return nil
}
