package nixstore

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// closureWant is the closure every testdata/pathinfo/*.json file (but
// other-store-dir.json) describes, in its own shape.
func closureWant(t *testing.T) []PathInfo {
	t.Helper()
	sp := func(s string) StorePath {
		p, err := ParseStorePath(DefaultStoreDir, s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	h := func(s string) Hash {
		v, err := ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	dep := sp("/nix/store/5awlv00x7rwnm2x5wjfaggs15cd50a8f-releng-dep")
	a := sp("/nix/store/cc80vl87cmfw7c6crl5rvbshns4sp5kr-releng-a-1.0")
	return []PathInfo{
		{
			Path:    dep,
			NarHash: h("sha256:13w19wwvpfqyfq1fixzqjphj7dil4vlv9gada02f9kpl04qnmkw4"),
			NarSize: 128,
			CA:      "text:sha256:1i0xww8znqa2wqbggkmgxy6was90nqc60b4wpv4hvwv1460id9dl",
		},
		{
			Path:       a,
			NarHash:    h("sha256:14k5vdz5jc9db4wqw666sydm6h0xzaic7r87g0ic1hs68w249ypr"),
			NarSize:    584,
			References: []StorePath{dep, a},
			Deriver:    sp("/nix/store/7bbnap4gignibz9xbf85brhqkmqy453y-releng-a-1.0.drv"),
		},
		{
			Path:       sp("/nix/store/fvpcd59hrydw1330x5w93cpqs7r7z9pk-releng-b"),
			NarHash:    h("sha256:1nnw2j85rj22562djx3ym6w92mkrr4w2l1cakb8ksfhilc5ilv7l"),
			NarSize:    176,
			References: []StorePath{a},
			Deriver:    sp("/nix/store/cnyc482s56h03z9ndgdyhlj6k3gw9jr3-releng-b.drv"),
			Signatures: []string{"test-key-1:+K86wV/kt+eltWmS2hfhqZvUylNdJtT6IumOvuSfVu4DSOvJKnQU6hUKU0nC6AqGJWXA71Sb4ZkqAo/dnk6bAQ=="},
		},
	}
}

// TestParsePathInfoShapes parses the same closure in every shape Nix and
// Lix print (array with SRI or nixbase32 hashes, object keyed by full path
// or base name, structured hashes and content addresses, signature
// objects) and expects the same result.
func TestParsePathInfoShapes(t *testing.T) {
	want := closureWant(t)
	files := []string{
		"nix-2.8-array.json",
		"old-nix32-array.json",
		"keyed-full-paths.json",
		"keyed-structured-hashes.json",
		"keyed-base-names.json",
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			got, err := LoadClosureFile(filepath.Join("testdata", "pathinfo", f), DefaultStoreDir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if err := CheckClosure(got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLoadClosureFileStoreDir reads a closure file of a store directory
// other than /nix/store, as tests using --store-dir do.
func TestLoadClosureFileStoreDir(t *testing.T) {
	file := filepath.Join("testdata", "pathinfo", "other-store-dir.json")
	infos, err := LoadClosureFile(file, "/srv/releng/store")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Path.String() != "/srv/releng/store/0000000000000000000000000000000a-hello-2.12" ||
		len(infos[0].References) != 2 || infos[0].Deriver.Base() != "0000000000000000000000000000000c-hello-2.12.drv" {
		t.Errorf("unexpected %+v", infos)
	}
	if err := CheckClosure(infos); err != nil {
		t.Error(err)
	}
	// The same file read for /nix/store is an error naming the file.
	_, err = LoadClosureFile(file, DefaultStoreDir)
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "not in the store directory /nix/store") {
		t.Errorf("error %v", err)
	}
}

func TestParsePathInfoErrors(t *testing.T) {
	const p = "/nix/store/fvpcd59hrydw1330x5w93cpqs7r7z9pk-releng-b"
	const h = `"sha256-9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="`
	obj := func(fields string) string {
		return `[{"path":"` + p + `","narHash":` + h + `,"narSize":176,"references":[]` + fields + `}]`
	}
	valid, err := os.ReadFile(filepath.Join("testdata", "pathinfo", "nix-2.8-array.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no path info (empty input)"},
		{"truncated", string(valid[:len(valid)/2]), "truncated JSON: input ends at line 1, column"},
		{"truncated keyed", `{"` + p + `": {"narHash": ` + h, "truncated JSON"},
		{"syntax", "[{\n\"path\" 1}]", "src:2:9: invalid JSON"},
		{"string", `"hello"`, "unknown shape of path info"},
		{"number", `42`, "unknown shape of path info"},
		{"single object", `{"path":"` + p + `","narHash":` + h + `}`, `key "path" is not a store path`},
		{"wrapper", `{"version":2,"paths":{}}`, `key "version" is not a store path`},
		{"array of strings", `["` + p + `"]`, "entry 0: expected a path info object"},
		{"null value", `{"` + p + `": null}`, p + ": not a valid path"},
		{"invalid", obj(`,"valid":false`), "not a valid path"},
		{"no path", `[{"narHash":` + h + `,"narSize":1,"references":[]}]`, `entry 0: no "path"`},
		{"no narHash", `[{"path":"` + p + `","narSize":1,"references":[]}]`, `no "narHash"`},
		{"no narSize", `[{"path":"` + p + `","narHash":` + h + `,"references":[]}]`, `no "narSize"`},
		{"no references", `[{"path":"` + p + `","narHash":` + h + `,"narSize":1}]`, `no "references"`},
		{"md5 hash", `[{"path":"` + p + `","narHash":"md5:00000000000000000000000000000000","narSize":1,"references":[]}]`, "not a sha256 hash"},
		{"short hash", `[{"path":"` + p + `","narHash":"sha256-AAAA","narSize":1,"references":[]}]`, "invalid hash"},
		{"structured wrong format", `[{"path":"` + p + `","narHash":{"algorithm":"sha256","format":"nix32","hash":"9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="},"narSize":1,"references":[]}]`, "is not sha256 nix32"},
		{"structured unknown format", `[{"path":"` + p + `","narHash":{"algorithm":"sha256","format":"base99","hash":"x"},"narSize":1,"references":[]}]`, `unknown format "base99"`},
		{"narSize string", `[{"path":"` + p + `","narHash":` + h + `,"narSize":"176","references":[]}]`, `field "narSize"`},
		{"reference outside store", `[{"path":"` + p + `","narHash":` + h + `,"narSize":1,"references":["/tmp/x"]}]`, "references: \"/tmp/x\" is not in the store directory"},
		{"bad reference hash", `[{"path":"` + p + `","narHash":` + h + `,"narSize":1,"references":["/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x"]}]`, "not a nixbase32 character"},
		{"bad deriver", obj(`,"deriver":"/nix/store/x"`), "deriver:"},
		{"bad signature", obj(`,"signatures":["nocolon"]`), "is not NAME:SIG"},
		{"bad ca", obj(`,"ca":"sha256:abc"`), "does not start with text: or fixed:"},
		{"bad ca method", obj(`,"ca":{"method":"zip","hash":"sha256-9GwaC6MROj3RmooFKjjJeVaRuKl+dNmEKULIXJAU3No="}`), `unknown content addressing method "zip"`},
		{"other storeDir", `{"fvpcd59hrydw1330x5w93cpqs7r7z9pk-releng-b":{"narHash":` + h + `,"narSize":1,"references":[],"storeDir":"/gnu/store"}}`, "store directory /gnu/store, expected /nix/store"},
		{"duplicate", `[` + obj("")[1:len(obj(""))-1] + `,` + obj("")[1:], "appears twice"},
		{"duplicate key", `{"` + p + `":{"narHash":` + h + `,"narSize":1,"references":[]},"` + p + `":{"narHash":` + h + `,"narSize":1,"references":[]}}`, "appears twice"},
		{"path differs from key", `{"` + p + `":{"path":"/nix/store/5awlv00x7rwnm2x5wjfaggs15cd50a8f-releng-dep","narHash":` + h + `,"narSize":1,"references":[]}}`, "not the key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePathInfo([]byte(tc.in), "src", DefaultStoreDir)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "src") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not start with the source and say %q", err, tc.want)
			}
		})
	}
}

func TestCheckClosureIncomplete(t *testing.T) {
	infos := closureWant(t)
	err := CheckClosure(infos[1:])
	if err == nil || !strings.Contains(err.Error(), "releng-a-1.0 refers to /nix/store/5awlv00x7rwnm2x5wjfaggs15cd50a8f-releng-dep") {
		t.Errorf("error %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	infos := closureWant(t)
	got := infos[1].Fingerprint()
	want := "1;/nix/store/cc80vl87cmfw7c6crl5rvbshns4sp5kr-releng-a-1.0;sha256:14k5vdz5jc9db4wqw666sydm6h0xzaic7r87g0ic1hs68w249ypr;584;" +
		"/nix/store/5awlv00x7rwnm2x5wjfaggs15cd50a8f-releng-dep,/nix/store/cc80vl87cmfw7c6crl5rvbshns4sp5kr-releng-a-1.0"
	if got != want {
		t.Errorf("fingerprint\n got %s\nwant %s", got, want)
	}
	if got := infos[0].Fingerprint(); !strings.HasSuffix(got, ";128;") {
		t.Errorf("fingerprint without references %q", got)
	}
}
