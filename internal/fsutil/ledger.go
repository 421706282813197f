package fsutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is what a ledger entry is.
type Kind string

const (
	// KindFile is a regular file releng wrote.
	KindFile Kind = "file"
	// KindDir is a directory releng made; its entries are recorded one by one.
	KindDir Kind = "dir"
	// KindSymlink is a symbolic link releng made (e.g. a GC root).
	KindSymlink Kind = "symlink"
	// KindTemp is a temporary directory releng made and alone writes into
	// (a staging tree); everything under it is releng's.
	KindTemp Kind = "temp"
)

// Ledger records every entry releng creates under a directory, so that
// releng deletes only what it wrote. An entry is recorded before it is
// created (or, for a tree built in a staging directory, before it is
// renamed into place), so a crash never leaves an output the ledger does
// not know. Deleting never follows a symbolic link, and an entry that is
// not in the ledger, or is not of the kind recorded, stops the deletion
// before anything is removed, naming it.
type Ledger struct {
	dir     string
	file    string
	entries map[string]Kind
}

type ledgerFile struct {
	Version int             `json:"version"`
	Entries map[string]Kind `json:"entries"`
}

// ForeignError says a directory releng was about to clear holds entries it
// did not write.
type ForeignError struct {
	Dir   string
	Paths []string // absolute, at most a few
	More  int
}

func (e *ForeignError) Error() string {
	more := ""
	if e.More > 0 {
		more = fmt.Sprintf(" and %d more", e.More)
	}
	return fmt.Sprintf("%s holds %s%s, which releng did not write; releng deletes only what it wrote, so it stopped before deleting anything: move these away (or delete them yourself if they are not needed)", e.Dir, strings.Join(e.Paths, ", "), more)
}

// LoadLedger reads the ledger of dir kept in file (absolute, normally
// under dir). A missing file is an empty ledger.
func LoadLedger(dir, file string) (*Ledger, error) {
	l := &Ledger{dir: filepath.Clean(dir), file: file, entries: map[string]Kind{}}
	data, err := ReadFile(file, MaxRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	var lf ledgerFile
	if err := json.Unmarshal(data, &lf); err != nil || lf.Version != 1 {
		return nil, fmt.Errorf("%s: not a releng output ledger (version 1); remove it only after removing what releng wrote in %s", file, dir)
	}
	for rel, k := range lf.Entries {
		if _, err := cleanRel(rel); err != nil {
			return nil, fmt.Errorf("%s: entry %q: %v", file, rel, err)
		}
		switch k {
		case KindFile, KindDir, KindSymlink, KindTemp:
		default:
			return nil, fmt.Errorf("%s: entry %q has unknown kind %q", file, rel, k)
		}
		l.entries[rel] = k
	}
	return l, nil
}

// Dir is the directory the ledger covers.
func (l *Ledger) Dir() string { return l.dir }

// Has reports whether the entry at abs (under Dir) is recorded.
func (l *Ledger) Has(abs string) bool {
	rel, err := l.rel(abs)
	if err != nil {
		return false
	}
	_, ok := l.entries[rel]
	return ok
}

func cleanRel(rel string) (string, error) {
	c := path.Clean(rel)
	if c != rel || c == "." || c == ".." || strings.HasPrefix(c, "../") || path.IsAbs(c) {
		return "", fmt.Errorf("not a clean relative path")
	}
	return c, nil
}

func (l *Ledger) rel(abs string) (string, error) {
	r, err := filepath.Rel(l.dir, filepath.Clean(abs))
	if err != nil {
		return "", err
	}
	return cleanRel(filepath.ToSlash(r))
}

// Record adds entries (absolute paths under Dir, with their kinds) and
// their parent directories below Dir, and saves the ledger.
func (l *Ledger) Record(entries map[string]Kind) error {
	for abs, k := range entries {
		rel, err := l.rel(abs)
		if err != nil {
			return fmt.Errorf("ledger of %s: %s is not below it", l.dir, abs)
		}
		l.entries[rel] = k
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if _, ok := l.entries[d]; !ok {
				l.entries[d] = KindDir
			}
		}
	}
	return l.save()
}

// RecordTree records, under the absolute path dest (below Dir), every entry
// of the directory tree src, which is about to be renamed to dest.
func (l *Ledger) RecordTree(src, dest string) error {
	entries := map[string]Kind{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		target := filepath.Join(dest, r)
		switch {
		case d.IsDir():
			entries[target] = KindDir
		case d.Type()&fs.ModeSymlink != 0:
			entries[target] = KindSymlink
		case d.Type().IsRegular():
			entries[target] = KindFile
		default:
			return fmt.Errorf("%s: not a file, directory or symbolic link", p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return l.Record(entries)
}

func (l *Ledger) save() error {
	data, err := json.Marshal(ledgerFile{Version: 1, Entries: l.entries})
	if err != nil {
		return err
	}
	return WriteFileAtomic(l.file, data, 0o644)
}

// Clear removes every entry directly under Dir except those named in keep
// (and the ledger file). It first checks the whole tree and refuses, with a
// *ForeignError, if anything in it was not written by releng.
func (l *Ledger) Clear(keep ...string) error { return l.clear(keep, false) }

// CheckClear reports, as Clear would, a *ForeignError when the directory
// holds something releng did not write; it deletes nothing.
func (l *Ledger) CheckClear(keep ...string) error { return l.clear(keep, true) }

func (l *Ledger) clear(keep []string, checkOnly bool) error {
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	names, err := l.topNames(root, keep)
	if err != nil {
		return err
	}
	return l.remove(root, names, checkOnly)
}

// topNames lists the entries directly under Dir but keep and the ledger.
func (l *Ledger) topNames(root *os.Root, keep []string) ([]string, error) {
	top, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, k := range keep {
		skip[k] = true
	}
	if r, err := l.rel(l.file); err == nil {
		skip[r] = true
	}
	var names []string
	for _, e := range top {
		if !skip[e.Name()] {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Remove removes the entry at abs (below Dir) and, for a directory,
// everything in it, after checking that all of it was written by releng.
// A missing entry is not an error.
func (l *Ledger) Remove(abs string) error {
	rel, err := l.rel(abs)
	if err != nil {
		return fmt.Errorf("%s is not below %s", abs, l.dir)
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := root.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
		l.forget(rel)
		return l.save()
	}
	return l.remove(root, []string{rel}, false)
}

// remove checks the trees at rels (slash paths below Dir) and then deletes
// them, deepest first, through root (which never follows a symbolic link out
// of Dir, and os.Root.Remove never follows one at all).
func (l *Ledger) remove(root *os.Root, rels []string, checkOnly bool) error {
	var foreign []string
	var order []string // deletion order: children before parents
	var walk func(rel string) error
	walk = func(rel string) error {
		st, err := root.Lstat(filepath.FromSlash(rel))
		if err != nil {
			return err
		}
		kind, ok := l.entries[rel]
		if !ok || !sameKind(kind, st.Mode()) {
			foreign = append(foreign, filepath.Join(l.dir, filepath.FromSlash(rel)))
			return nil
		}
		if kind == KindTemp {
			order = append(order, rel)
			return nil
		}
		if kind == KindDir {
			ents, err := fs.ReadDir(root.FS(), rel)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if err := walk(rel + "/" + e.Name()); err != nil {
					return err
				}
			}
		}
		order = append(order, rel)
		return nil
	}
	for _, rel := range rels {
		if err := walk(rel); err != nil {
			return err
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		e := &ForeignError{Dir: l.dir, Paths: foreign}
		if len(foreign) > 5 {
			e.Paths, e.More = foreign[:5], len(foreign)-5
		}
		return e
	}
	if checkOnly {
		return nil
	}
	for _, rel := range order {
		var err error
		if l.entries[rel] == KindTemp {
			err = root.RemoveAll(filepath.FromSlash(rel))
		} else {
			err = root.Remove(filepath.FromSlash(rel))
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", filepath.Join(l.dir, rel), err)
		}
		l.forget(rel)
	}
	return l.save()
}

// forget drops rel and everything recorded below it.
func (l *Ledger) forget(rel string) {
	delete(l.entries, rel)
	prefix := rel + "/"
	for r := range l.entries {
		if strings.HasPrefix(r, prefix) {
			delete(l.entries, r)
		}
	}
}

func sameKind(k Kind, m fs.FileMode) bool {
	switch k {
	case KindFile:
		return m.IsRegular()
	case KindDir, KindTemp:
		return m.IsDir()
	case KindSymlink:
		return m&fs.ModeSymlink != 0
	}
	return false
}
