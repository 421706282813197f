package location_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/location"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/testenv"
)

func TestParse(t *testing.T) {
	opts := location.Options{ProjectRoot: "/work/lix", S3Endpoint: "http://127.0.0.1:3900", S3Region: "garage"}
	tests := []struct {
		in       string
		kind     location.Kind
		dir      string
		endpoint string
		region   string
		bucket   string
		prefix   string
		profile  string
		partSize int64
		url      string
		err      string
	}{
		{in: "release/local/releases", kind: location.Dir, dir: "/work/lix/release/local/releases"},
		{in: "./out/../docs", kind: location.Dir, dir: "/work/lix/docs"},
		{in: "/srv/releases", kind: location.Dir, dir: "/srv/releases"},
		{in: "file:///srv/cache", kind: location.Dir, dir: "/srv/cache"},
		{in: "file://localhost/srv/cache", kind: location.Dir, dir: "/srv/cache"},
		{in: "s3://releases", kind: location.S3, bucket: "releases"},
		{in: "s3://docs/lix/manual?region=eu-west-1&endpoint=https://s3.example.com", kind: location.S3, bucket: "docs", prefix: "lix/manual", endpoint: "https://s3.example.com", region: "eu-west-1"},
		{in: "s3://cache?profile=lix&multipart-chunk-size=8388608", kind: location.S3, bucket: "cache", profile: "lix", partSize: 8 << 20},
		{in: "s3://cache?buffer-size=5242880", kind: location.S3, bucket: "cache", partSize: 5 << 20},
		{in: "https://cache.example.org/", kind: location.HTTP, url: "https://cache.example.org"},
		{in: "http://127.0.0.1:9000/bucket/prefix", kind: location.HTTP, url: "http://127.0.0.1:9000/bucket/prefix"},
		{in: "", err: "empty"},
		{in: "file://host/x", err: "not supported"},
		{in: "file:relative", err: "absolute"},
		{in: "file:///x?compression=zstd", err: "no ?parameters"},
		{in: "gs://bucket", err: "unsupported scheme"},
		{in: "s3://b?bogus=1", err: "unknown parameter"},
		{in: "s3://bkt?compression=zstd", err: "unknown parameter"},
		{in: "s3://bkt?multipart-chunk-size=1024", err: "from 5242880"},
		{in: "s3://bkt?multipart-chunk-size=8388608&buffer-size=8388608", err: "not both"},
		{in: "https://cache.example.org?priority=40", err: "no ?parameters"},
		{in: "https://user:pw@cache.example.org", err: "credentials do not belong"},
	}
	for _, tc := range tests {
		loc, err := location.Parse(tc.in, opts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %+v, %v; want error containing %q", tc.in, loc, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if loc.Kind != tc.kind || loc.Dir != tc.dir || loc.S3.Endpoint != tc.endpoint || loc.S3.Region != tc.region || loc.S3.Bucket != tc.bucket ||
			loc.S3.Prefix != tc.prefix || loc.S3.Profile != tc.profile || loc.S3.PartSize != tc.partSize || loc.URL != tc.url {
			t.Errorf("Parse(%q) = %+v", tc.in, loc)
		}
	}
	if _, err := location.Parse("rel/path", location.Options{}); err == nil {
		t.Error("a relative path without a project root was accepted")
	}
}

func TestOpen(t *testing.T) {
	opts := location.Options{ProjectRoot: "/work/lix", Credentials: &s3.Credentials{AccessKeyID: "id", SecretAccessKey: "secret"}}
	for in, want := range map[string]string{
		"release/local/docs": "file:///work/lix/release/local/docs",
		"s3://releases/lix?endpoint=http://127.0.0.1:9000": "s3://releases/lix",
		"https://cache.example.org/":                       "https://cache.example.org",
	} {
		b, err := location.Open(in, opts)
		if err != nil {
			t.Fatalf("Open(%q): %v", in, err)
		}
		if b.String() != want {
			t.Errorf("Open(%q) = %s; want %s", in, b, want)
		}
	}
	if _, err := location.Open("s3://releases?endpoint=http://h:1&scheme=https", opts); err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("Open with conflicting schemes: %v", err)
	}
}

// TestNixCache: a directory opened as a Nix cache holds nothing but the
// objects, and StatSHA256 hashes them back through the decorators; a
// plain directory bucket records checksums.
func TestNixCache(t *testing.T) {
	ctx := context.Background()
	data := []byte("a NAR file")
	for _, nixCache := range []bool{false, true} {
		root := filepath.Join(t.TempDir(), "cache")
		b, err := location.Open("file://"+root, location.Options{NixCache: nixCache})
		if err != nil {
			t.Fatal(err)
		}
		buckettest.Put(t, b, "nar/x.nar", data, bucket.PutOptions{})
		_, err = os.Stat(filepath.Join(root, ".releng-meta"))
		if records := err == nil; records == nixCache {
			t.Errorf("NixCache=%v: metadata records exist: %v", nixCache, records)
		}
		st, err := b.Stat(ctx, "nar/x.nar")
		if err != nil {
			t.Fatal(err)
		}
		if recorded := st.SHA256 != ""; recorded == nixCache {
			t.Errorf("NixCache=%v: Stat reports sha256 %q", nixCache, st.SHA256)
		}
		st, err = bucket.StatSHA256(ctx, b, "nar/x.nar")
		if err != nil || st.SHA256 != buckettest.SHA256(data) || st.Size != int64(len(data)) {
			t.Errorf("NixCache=%v: StatSHA256 = %+v, %v; want sha256 %s", nixCache, st, err, buckettest.SHA256(data))
		}
		if _, err := bucket.StatSHA256(ctx, b, "nar/missing.nar"); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("StatSHA256 of a missing object: %v", err)
		}
	}
}

// TestConcurrencyLimit: no more operations than Options.Concurrency are
// in flight; a Get holds its slot until its reader is closed.
func TestConcurrencyLimit(t *testing.T) {
	b, err := location.Open(filepath.Join(t.TempDir(), "b"), location.Options{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	buckettest.Put(t, b, "k", []byte("x"), bucket.PutOptions{})
	ctx := context.Background()
	r1, err := b.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.Stat(short, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third operation with two readers open: %v; want it to wait", err)
	}
	r1.Close()
	if _, err := b.Stat(ctx, "k"); err != nil {
		t.Errorf("after a reader was closed: %v", err)
	}
	r2.Close()
}

// TestS3 opens MinIO buckets through URLs alone (with credentials from
// the options, the environment, or a profile of the shared credentials
// file) and checks what StatSHA256 knows.
func TestS3(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "loc", false)
	ctx := context.Background()
	raw := "s3://loc/pre?endpoint=" + m.Endpoint + "&scheme=http&addressing-style=path&multipart-chunk-size=5242880"
	creds := &s3.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: credentials.Secret(m.SecretKey)}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	file := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(file, []byte("[releng-test]\naws_access_key_id = "+m.AccessKey+"\naws_secret_access_key = "+m.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)

	for name, open := range map[string]func() (bucket.Bucket, error){
		"options": func() (bucket.Bucket, error) { return location.Open(raw, location.Options{Credentials: creds}) },
		"profile": func() (bucket.Bucket, error) { return location.Open(raw+"&profile=releng-test", location.Options{}) },
		// The environment's s3_endpoint and s3_region fill in for a URL
		// without endpoint= and region=, also in a Location built by hand
		// (as binarycache does).
		"env-endpoint": func() (bucket.Bucket, error) {
			return location.Location{Kind: location.S3, S3: s3.Config{Bucket: "loc", Prefix: "pre", Scheme: "http", AddressingStyle: "path"}}.Open(
				location.Options{Credentials: creds, S3Endpoint: m.Endpoint, S3Region: "us-east-1"})
		},
	} {
		b, err := open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data := []byte("object of " + name)
		buckettest.Put(t, b, name, data, bucket.PutOptions{})
		if st, err := bucket.StatSHA256(ctx, b, name); err != nil || st.SHA256 != buckettest.SHA256(data) {
			t.Errorf("%s: StatSHA256 = %+v, %v", name, st, err)
		}
	}
	// Anonymous (an empty chain): refused by a private bucket.
	b, err := location.Open(raw, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "options"); !errors.Is(err, bucket.ErrForbidden) {
		t.Errorf("anonymous stat: %v; want ErrForbidden", err)
	}
	// An object another tool wrote has no recorded checksum, and an S3
	// bucket is not read back to compute one.
	if _, err := m.Client(t).PutObject(ctx, "loc", "pre/foreign", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err = location.Open(raw, location.Options{Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := bucket.StatSHA256(ctx, b, "foreign"); err != nil || st.SHA256 != "" || st.Size != 1 {
		t.Errorf("StatSHA256 of a foreign object = %+v, %v; want size 1, no sha256", st, err)
	}
}
