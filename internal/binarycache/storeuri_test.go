package binarycache

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseStoreURI(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want StoreURI
	}{
		{"file:///srv/cache", StoreURI{Scheme: "file", Dir: "/srv/cache", Compression: "zstd", CompressionLevel: -1}},
		{"file:///srv/cache/?compression=xz&compression-level=6&write-nar-listing=true&want-mass-query=true&priority=40",
			StoreURI{Scheme: "file", Dir: "/srv/cache", Compression: "xz", CompressionLevel: 6, WriteNARListing: true, WantMassQuery: true, Priority: 40, HasPriority: true}},
		{"file:///srv/my%20cache?compression=none&parallel-compression=1&secret-key=/k1&secret-keys=/k2,/k3",
			StoreURI{Scheme: "file", Dir: "/srv/my cache", Compression: "none", CompressionLevel: -1, ParallelCompression: true, SecretKeyFiles: []string{"/k1", "/k2", "/k3"}}},
		// Lix's cache parameters (SPEC §3.5).
		{"s3://lix-cache?region=garage&endpoint=127.0.0.1:3900&scheme=http&want-mass-query=true&write-nar-listing=true&ls-compression=zstd&narinfo-compression=zstd&compression=zstd&parallel-compression=true",
			StoreURI{Scheme: "s3", Bucket: "lix-cache", Compression: "zstd", CompressionLevel: -1, ParallelCompression: true, WriteNARListing: true, WantMassQuery: true,
				LSCompression: "zstd", NarinfoCompression: "zstd", Region: "garage", Endpoint: "127.0.0.1:3900", S3Scheme: "http"}},
		{"s3://my.bucket/some/prefix?profile=ci&addressing-style=path&multipart-upload=true&multipart-chunk-size=8388608&log-compression=xz",
			StoreURI{Scheme: "s3", Bucket: "my.bucket", Prefix: "some/prefix", Compression: "zstd", CompressionLevel: -1, Profile: "ci", AddressingStyle: "path",
				MultipartUpload: true, HasMultipartUpload: true, PartSize: 8 << 20, LogCompression: "xz"}},
		{"s3://bucket?buffer-size=5242880&narinfo-compression=none", StoreURI{Scheme: "s3", Bucket: "bucket", Compression: "zstd", CompressionLevel: -1, PartSize: 5 << 20}},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := ParseStoreURI(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Raw = tc.raw
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseStoreURIErrors(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"file:///c?compresion=zstd", `unknown parameter "compresion" (did you mean "compression"?)`},
		{"file:///c?secret-kye=/k", `did you mean "secret-key"?`},
		{"file:///c?wantmassquery=1", `did you mean "want-mass-query"?`},
		{"file:///c?frobnicate=1", `unknown parameter "frobnicate"; releng accepts:`},
		{"file:///c?compression=bzip2", "compression=bzip2: releng compresses NARs with zstd, xz or none"},
		{"file:///c?compression-level=high", "compression-level=high: not a number"},
		{"file:///c?compression-level=99", "compression-level=99"},
		{"file:///c?write-nar-listing=maybe", "write-nar-listing=maybe: want true or false"},
		{"file:///c?priority=x", "priority=x: not a number"},
		{"file:///c?compression=xz&compression=zstd", "compression is given twice"},
		{"file:///c?write-nar-listing", "has no value"},
		{"file:///c?region=eu-west-1", "region applies to s3:// stores only"},
		{"file:///c?ls-compression=gzip", "ls-compression=gzip"},
		{"file:///c?secret-key=", "want the path of a secret key file"},
		{"file://relative/dir", "absolute"},
		{"file:///", "cannot be /"},
		{"s3://Bad_Bucket", "lowercase letters"},
		{"s3://ab", "3 to 63"},
		{"s3://bucket?scheme=ftp", "scheme=ftp: want http or https"},
		{"s3://bucket?addressing-style=odd", "want auto, path or virtual"},
		{"s3://bucket?multipart-chunk-size=100", "multipart-chunk-size=100: want a number of bytes"},
		{"s3://bucket?multipart-chunk-size=8388608&buffer-size=8388608", "not both"},
		{"s3://bucket/../x", "bad prefix"},
		{"ssh://host", `unsupported store type "ssh"`},
		{"/nix/store", "not a binary cache URI"},
		{"file:///c#frag", "fragment"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := ParseStoreURI(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.raw) {
				t.Errorf("error does not name the URI: %v", err)
			}
		})
	}
}

func TestStoreURIWarnings(t *testing.T) {
	u := mustURI(t, "file:///c?narinfo-compression=zstd&ls-compression=xz")
	if w := u.Warnings(); len(w) != 2 || !strings.Contains(w[0], "narinfo-compression=zstd is ignored for a file:// cache") {
		t.Errorf("warnings %q", w)
	}
	if u.bodyEncoding(u.NarinfoCompression) != "" {
		t.Error("a file:// cache got a Content-Encoding")
	}
	s := mustURI(t, "s3://bucket?narinfo-compression=zstd&multipart-upload=false")
	if s.bodyEncoding(s.NarinfoCompression) != "zstd" || len(s.Warnings()) != 1 {
		t.Errorf("s3: encoding %q, warnings %q", s.bodyEncoding(s.NarinfoCompression), s.Warnings())
	}
}

func TestLoadKeys(t *testing.T) {
	good, _ := testKey(t, "good-1")
	same, _ := testKey(t, "good-1")
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f, mode)
		return f
	}
	goodData, _ := os.ReadFile(good)
	short := write("short.sec", "k:"+strings.Repeat("A", 40), 0o600)
	open := write("open.sec", string(goodData), 0o644)
	garbage := write("garbage.sec", "no colon here", 0o600)
	for _, tc := range []struct {
		name     string
		files    string
		insecure bool
		want     string
	}{
		{"wrong length", short, false, "bytes long"},
		{"unsafe mode", open, false, "chmod 600"},
		{"not a key", garbage, false, "secret key"},
		{"missing", filepath.Join(dir, "nope.sec"), false, "nope.sec"},
		{"same name twice", good + "," + same, false, "same name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := mustURI(t, "file:///c?secret-keys="+tc.files)
			_, err := u.LoadKeys(tc.insecure)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(goodData[len("good-1:"):len("good-1:")+20])) {
				t.Error("the error shows key material")
			}
		})
	}
	u := mustURI(t, "file:///c?secret-key="+open)
	if keys, err := u.LoadKeys(true); err != nil || len(keys) != 1 {
		t.Errorf("--allow-insecure-key: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{"compresion": "compression", "Compression": "compression", "secret_key": "secret-key", "ls-compresion": "ls-compression", "endpiont": "endpoint", "xyzzy": ""} {
		if got := suggest(in, Params); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
