package binarycache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/closure/nixdb"
	"github.com/releng-project/releng/internal/nixstore"
)

// Source says where path information comes from.
type Source struct {
	// StoreDir is the store directory (nixstore.DefaultStoreDir if empty).
	StoreDir string
	// ClosureFile, if set, is a JSON file in any shape `nix path-info
	// --json` prints (tests: a directory tree shaped like a store);
	// otherwise Nix is asked.
	ClosureFile string
	// Nix runs `nix path-info --json --recursive`.
	Nix nixstore.Nix
}

// LoadClosure returns the path information of the closure of roots (store
// paths, or symbolic links to them such as ./result). With a closure file
// and no roots, it is every path of the file. The local store's closures
// are read from Nix's database (nixdb) when it can, and asked of `nix
// path-info` otherwise.
func LoadClosure(ctx context.Context, src Source, roots []string) ([]nixstore.PathInfo, error) {
	storeDir := src.StoreDir
	if storeDir == "" {
		storeDir = nixstore.DefaultStoreDir
	}
	if err := nixstore.ValidateStoreDir(storeDir); err != nil {
		return nil, err
	}
	var paths []nixstore.StorePath
	for _, r := range roots {
		sp, err := ResolveStorePath(storeDir, r)
		if err != nil {
			return nil, err
		}
		paths = append(paths, sp)
	}
	if src.ClosureFile != "" {
		infos, err := nixstore.LoadClosureFile(src.ClosureFile, storeDir)
		if err != nil {
			return nil, fmt.Errorf("closure file %s: %w", src.ClosureFile, err)
		}
		if len(roots) == 0 {
			return infos, nil
		}
		return Closure(infos, paths, src.ClosureFile)
	}
	if len(paths) == 0 {
		return nil, errors.New("no store paths given")
	}
	if storeDir == nixstore.DefaultStoreDir && src.Nix.Store == "" && localDB(src.Nix) && dbMeans(src.Nix.Derivation, paths) {
		if infos, err := fromNixDB(storeDir, src.Nix, paths); err == nil {
			return infos, nil
		}
	}
	n := src.Nix
	n.StoreDir = storeDir
	args := make([]string, len(paths))
	for i, p := range paths {
		args[i] = p.String()
	}
	return n.PathInfo(ctx, true, args...)
}

// ResolveStorePath turns arg (a store path, a path inside one, or a
// symbolic link to one, such as ./result) into the store path.
func ResolveStorePath(storeDir, arg string) (nixstore.StorePath, error) {
	p, err := filepath.Abs(arg)
	if err != nil {
		return nixstore.StorePath{}, err
	}
	if !strings.HasPrefix(p, storeDir+"/") {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nixstore.StorePath{}, fmt.Errorf("%s does not exist (want a store path in %s)", arg, storeDir)
			}
			return nixstore.StorePath{}, err
		}
		if !strings.HasPrefix(real, storeDir+"/") {
			return nixstore.StorePath{}, fmt.Errorf("%s is not in the Nix store %s", arg, storeDir)
		}
		p = real
	}
	base, _, _ := strings.Cut(strings.TrimPrefix(p, storeDir+"/"), "/")
	sp, err := nixstore.ParseBaseName(storeDir, base)
	if err != nil {
		return nixstore.StorePath{}, fmt.Errorf("%s: %w", arg, err)
	}
	return sp, nil
}

// Closure returns the paths of infos reachable from roots, sorted as infos
// are. source names infos in errors.
func Closure(infos []nixstore.PathInfo, roots []nixstore.StorePath, source string) ([]nixstore.PathInfo, error) {
	index := make(map[string]int, len(infos))
	for i, pi := range infos {
		index[pi.Path.String()] = i
	}
	keep := make([]bool, len(infos))
	var stack []string
	for _, r := range roots {
		if _, ok := index[r.String()]; !ok {
			return nil, fmt.Errorf("%s is not in %s", r, source)
		}
		stack = append(stack, r.String())
	}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, ok := index[k]
		if !ok {
			return nil, fmt.Errorf("%s is not in %s, but the closure needs it", k, source)
		}
		if keep[i] {
			continue
		}
		keep[i] = true
		for _, ref := range infos[i].References {
			stack = append(stack, ref.String())
		}
	}
	var out []nixstore.PathInfo
	for i, pi := range infos {
		if keep[i] {
			out = append(out, pi)
		}
	}
	return out, nil
}

// dbMeans says whether the database's closure of roots is what Nix
// would give: the database has a path's own closure, which for a .drv is
// what `nix path-info --derivation` means (the derivations and sources),
// while a newer Nix without the flag reads a .drv as its outputs, and
// with it reads an output as its deriver. So roots all .drv with the
// flag, or none without it; anything else goes to Nix.
func dbMeans(derivation bool, roots []nixstore.StorePath) bool {
	drvs := 0
	for _, r := range roots {
		if strings.HasSuffix(r.Name, ".drv") {
			drvs++
		}
	}
	if derivation {
		return drvs == len(roots)
	}
	return drvs == 0
}

// localDB says whether Nix's database can be read directly rather than
// through `nix path-info`: the store n reaches is the local one
// (NIX_REMOTE unset, local, daemon or auto).
func localDB(n nixstore.Nix) bool {
	switch n.Getenv("NIX_REMOTE") {
	case "", "local", "daemon", "auto":
		return true
	}
	return false
}

// fromNixDB reads the closure of roots from Nix's database: no process,
// only the rows of the closure. Any failure (no database, no access, a
// root Nix does not know, a write in progress, a row it does not
// understand) is the caller's cue to ask Nix, which says what is wrong in
// its own words.
func fromNixDB(storeDir string, n nixstore.Nix, roots []nixstore.StorePath) ([]nixstore.PathInfo, error) {
	db, err := nixdb.Open(nixdb.Path(n.Getenv("NIX_STATE_DIR")))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Closure(storeDir, roots)
}
