package nixstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
)

// PathInfo is what releng needs to know about a store path to publish it.
type PathInfo struct {
	Path    StorePath
	NarHash Hash
	NarSize uint64
	// References are the store paths this one refers to, sorted; the path
	// itself may be among them.
	References []StorePath
	// Deriver is the derivation that built the path; zero if unknown.
	Deriver StorePath
	// Signatures are "KEYNAME:BASE64" strings, as Nix has them.
	Signatures []string
	// CA is the content address in Nix's string form ("fixed:r:sha256:…",
	// "text:sha256:…"), or "" for an input-addressed path.
	CA string
}

// Fingerprint returns the string binary cache signatures sign.
func (pi *PathInfo) Fingerprint() string {
	return Fingerprint(pi.Path, pi.NarHash, pi.NarSize, pi.References)
}

// Fingerprint returns what Nix signs for a store path:
// "1;STOREPATH;NARHASH;NARSIZE;REF1,REF2,…" with full, sorted reference
// paths and the hash as "sha256:" nixbase32.
func Fingerprint(path StorePath, narHash Hash, narSize uint64, refs []StorePath) string {
	full := make([]string, len(refs))
	for i, r := range refs {
		full[i] = r.String()
	}
	slices.Sort(full)
	return fmt.Sprintf("1;%s;%s;%d;%s", path, narHash, narSize, strings.Join(full, ","))
}

// ParsePathInfo parses the output of `nix path-info --json [--recursive]`
// for paths in the store directory storeDir. It accepts every shape Nix
// and Lix have printed:
//
//   - an array of objects with a "path" field (Nix ≤ 2.18, Lix);
//   - an object keyed by store path (Nix ≥ 2.19), with full paths or base
//     names, and a null value for an invalid path (an error here);
//
// with hashes as "sha256:nixbase32", SRI "sha256-base64" or structured
// {"algorithm","format","hash"} objects, references and deriver as full
// paths or base names, signatures as strings or {"keyName","sig"}
// objects, and content addresses as strings or {"method","hash"} objects.
// Fields releng does not need (registrationTime, ultimate, closureSize…)
// are ignored. source names the input in errors (a file name, or the
// command that printed it). The result is sorted by path.
func ParsePathInfo(data []byte, source, storeDir string) ([]PathInfo, error) {
	if err := ValidateStoreDir(storeDir); err != nil {
		return nil, fmt.Errorf("%s: %v", source, err)
	}
	if err := checkJSON(data, source); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	type item struct {
		key string // object key, "" in the array shape
		raw json.RawMessage
	}
	var items []item
	switch trimmed[0] {
	case '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			return nil, fmt.Errorf("%s: %v", source, err)
		}
		for _, raw := range arr {
			items = append(items, item{raw: raw})
		}
	case '{':
		keys, raws, err := objectMembers(trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", source, err)
		}
		for i, k := range keys {
			if _, err := parseAnyPath(storeDir, k); err != nil {
				return nil, fmt.Errorf("%s: unknown shape of path info: expected an array of path infos or an object keyed by store path, but key %q is not a store path", source, k)
			}
			items = append(items, item{key: k, raw: raws[i]})
		}
	default:
		return nil, fmt.Errorf("%s: unknown shape of path info: expected an array of path infos or an object keyed by store path, got %s", source, abbrev(trimmed))
	}
	infos := make([]PathInfo, 0, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		where := fmt.Sprintf("entry %d", i)
		if it.key != "" {
			where = it.key
		}
		pi, err := decodePathInfo(it.raw, it.key, storeDir)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", source, where, err)
		}
		p := pi.Path.String()
		if seen[p] {
			return nil, fmt.Errorf("%s: %s appears twice", source, p)
		}
		seen[p] = true
		infos = append(infos, pi)
	}
	slices.SortFunc(infos, func(a, b PathInfo) int { return strings.Compare(a.Path.String(), b.Path.String()) })
	return infos, nil
}

// LoadClosureFile reads a closure JSON file (any shape ParsePathInfo
// accepts, a regular file of at most fsutil.MaxPathInfo bytes) whose paths
// are in the store directory storeDir; tests use it with a directory tree
// shaped like a store (--store-dir).
func LoadClosureFile(file, storeDir string) ([]PathInfo, error) {
	data, err := fsutil.ReadFile(file, fsutil.MaxPathInfo)
	if err != nil {
		return nil, err
	}
	return ParsePathInfo(data, file, storeDir)
}

// CheckClosure reports a reference to a path that is not in infos.
func CheckClosure(infos []PathInfo) error {
	have := make(map[string]bool, len(infos))
	for _, pi := range infos {
		have[pi.Path.String()] = true
	}
	for _, pi := range infos {
		for _, r := range pi.References {
			if !have[r.String()] {
				return fmt.Errorf("closure is incomplete: %s refers to %s, which is not in it", pi.Path, r)
			}
		}
	}
	return nil
}

// rawPathInfo is one path info object, every field in any of its shapes.
type rawPathInfo struct {
	Path       *string           `json:"path"`
	NarHash    json.RawMessage   `json:"narHash"`
	NarSize    *uint64           `json:"narSize"`
	References *[]string         `json:"references"`
	Deriver    *string           `json:"deriver"`
	Signatures []json.RawMessage `json:"signatures"`
	CA         json.RawMessage   `json:"ca"`
	StoreDir   *string           `json:"storeDir"`
	Valid      *bool             `json:"valid"`
}

func decodePathInfo(raw json.RawMessage, key, storeDir string) (PathInfo, error) {
	if string(raw) == "null" {
		return PathInfo{}, fmt.Errorf("not a valid path (nix path-info printed null)")
	}
	var r rawPathInfo
	if err := json.Unmarshal(raw, &r); err != nil {
		return PathInfo{}, fmt.Errorf("expected a path info object: %v", jsonErr(err))
	}
	if r.Valid != nil && !*r.Valid {
		return PathInfo{}, fmt.Errorf("not a valid path")
	}
	if r.StoreDir != nil && *r.StoreDir != storeDir {
		return PathInfo{}, fmt.Errorf("path info is for store directory %s, expected %s", *r.StoreDir, storeDir)
	}
	var pi PathInfo
	var err error
	switch {
	case r.Path != nil:
		if pi.Path, err = parseAnyPath(storeDir, *r.Path); err != nil {
			return PathInfo{}, fmt.Errorf("path: %v", err)
		}
		if key != "" {
			if kp, _ := parseAnyPath(storeDir, key); kp != pi.Path {
				return PathInfo{}, fmt.Errorf("\"path\" is %s, not the key", *r.Path)
			}
		}
	case key != "":
		pi.Path, _ = parseAnyPath(storeDir, key)
	default:
		return PathInfo{}, fmt.Errorf("no \"path\"")
	}
	if r.NarHash == nil {
		return PathInfo{}, fmt.Errorf("no \"narHash\"")
	}
	if pi.NarHash, err = decodeNarHash(r.NarHash); err != nil {
		return PathInfo{}, fmt.Errorf("narHash: %v", err)
	}
	if r.NarSize == nil || *r.NarSize == 0 {
		return PathInfo{}, fmt.Errorf("no \"narSize\"")
	}
	pi.NarSize = *r.NarSize
	if r.References == nil {
		return PathInfo{}, fmt.Errorf("no \"references\"")
	}
	for _, s := range *r.References {
		ref, err := parseAnyPath(storeDir, s)
		if err != nil {
			return PathInfo{}, fmt.Errorf("references: %v", err)
		}
		pi.References = append(pi.References, ref)
	}
	pi.References = sortPaths(pi.References)
	if r.Deriver != nil {
		if pi.Deriver, err = parseAnyPath(storeDir, *r.Deriver); err != nil {
			return PathInfo{}, fmt.Errorf("deriver: %v", err)
		}
	}
	for _, rs := range r.Signatures {
		sig, err := decodeSignature(rs)
		if err != nil {
			return PathInfo{}, fmt.Errorf("signatures: %v", err)
		}
		pi.Signatures = append(pi.Signatures, sig)
	}
	if len(r.CA) > 0 && string(r.CA) != "null" {
		if pi.CA, err = decodeCA(r.CA); err != nil {
			return PathInfo{}, fmt.Errorf("ca: %v", err)
		}
	}
	return pi, nil
}

// parseAnyPath parses a full store path or a base name.
func parseAnyPath(storeDir, s string) (StorePath, error) {
	if strings.HasPrefix(s, "/") {
		return ParseStorePath(storeDir, s)
	}
	return ParseBaseName(storeDir, s)
}

// sortPaths sorts store paths as Nix's sets do (by base name) and drops
// duplicates.
func sortPaths(ps []StorePath) []StorePath {
	slices.SortFunc(ps, func(a, b StorePath) int { return strings.Compare(a.Base(), b.Base()) })
	return slices.Compact(ps)
}

func decodeSignature(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var obj struct {
			KeyName string `json:"keyName"`
			Sig     string `json:"sig"`
		}
		if err := strictUnmarshal(raw, &obj); err != nil || obj.KeyName == "" || obj.Sig == "" {
			return "", fmt.Errorf("expected \"NAME:SIG\" or {\"keyName\",\"sig\"}, got %s", abbrev(raw))
		}
		s = obj.KeyName + ":" + obj.Sig
	}
	if i := strings.IndexByte(s, ':'); i <= 0 || i == len(s)-1 {
		return "", fmt.Errorf("signature %q is not NAME:SIG", s)
	}
	return s, nil
}

// decodeCA decodes a content address, a legacy string or a
// {"method","hash"} object, into Nix's string form.
func decodeCA(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, validateCA(s)
	}
	var obj struct {
		Method string          `json:"method"`
		Hash   json.RawMessage `json:"hash"`
	}
	if err := strictUnmarshal(raw, &obj); err != nil || obj.Hash == nil {
		return "", fmt.Errorf("expected a string or {\"method\",\"hash\"}, got %s", abbrev(raw))
	}
	hs, err := decodeAnyHash(obj.Hash)
	if err != nil {
		return "", err
	}
	h, err := renderHashNix32(hs)
	if err != nil {
		return "", err
	}
	switch obj.Method {
	case "nar":
		return "fixed:r:" + h, nil
	case "flat":
		return "fixed:" + h, nil
	case "text":
		return "text:" + h, nil
	case "git":
		return "fixed:git:" + h, nil
	}
	return "", fmt.Errorf("unknown content addressing method %q", obj.Method)
}

// validateCA checks the form of a content address string.
func validateCA(s string) error {
	rest, ok := strings.CutPrefix(s, "text:")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "fixed:"); !ok {
			return fmt.Errorf("content address %q does not start with text: or fixed:", s)
		}
		for _, m := range []string{"r:", "git:"} {
			if r, ok := strings.CutPrefix(rest, m); ok {
				rest = r
				break
			}
		}
	}
	if _, err := renderHashNix32(rest); err != nil {
		return fmt.Errorf("content address %q: %v", s, err)
	}
	return nil
}

func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// objectMembers returns the keys and values of a JSON object in order,
// refusing duplicate keys.
func objectMembers(data []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	var keys []string
	var vals []json.RawMessage
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k := tok.(string)
		if seen[k] {
			return nil, nil, fmt.Errorf("key %q appears twice", k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return keys, vals, nil
}

// checkJSON reports malformed or truncated JSON with its line and column.
func checkJSON(data []byte, source string) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%s: no path info (empty input)", source)
	}
	if json.Valid(data) {
		return nil
	}
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		if se.Offset >= int64(len(data)) || strings.Contains(se.Error(), "unexpected end") {
			return fmt.Errorf("%s: truncated JSON: input ends at line %d, column %d", source, line, col)
		}
		return fmt.Errorf("%s:%d:%d: invalid JSON: %v", source, line, col, se)
	}
	return fmt.Errorf("%s: invalid JSON: %v", source, err)
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q: expected %v, got JSON %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("got JSON %s", te.Value)
	}
	return err.Error()
}
