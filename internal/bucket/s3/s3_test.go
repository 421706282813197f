package s3_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/testenv"
)

var bucketSeq atomic.Int64

// newBucketName returns a fresh bucket name.
func newBucketName() string { return fmt.Sprintf("releng-test-%d", bucketSeq.Add(1)) }

func creds(m *testenv.MinIO) *s3.Credentials {
	return &s3.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: credentials.Secret(m.SecretKey)}
}

// factory returns buckets on m (at endpoint, m's or a proxy's), each in a
// new MinIO bucket, under prefix.
func factory(m *testenv.MinIO, endpoint, prefix string) func(t *testing.T) bucket.Bucket {
	return func(t *testing.T) bucket.Bucket {
		name := newBucketName()
		m.MakeBucket(t, name, false)
		b, err := s3.New(s3.Config{
			Bucket: name, Prefix: prefix, Endpoint: endpoint, Scheme: "http", AddressingStyle: "path",
			Credentials: creds(m), PartSize: bucket.MinPartSize, PartConcurrency: 3,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func TestConformance(t *testing.T) {
	m := testenv.StartMinIO(t)
	t.Run("bucket", func(t *testing.T) { buckettest.Run(t, factory(m, m.Endpoint, "")) })
	t.Run("prefix", func(t *testing.T) { buckettest.Run(t, factory(m, m.Endpoint, "some/pre fix")) })
}

func TestPrefixIsolation(t *testing.T) {
	m := testenv.StartMinIO(t)
	name := newBucketName()
	m.MakeBucket(t, name, false)
	open := func(prefix string) *s3.Bucket {
		b, err := s3.New(s3.Config{Bucket: name, Prefix: prefix, Endpoint: "http://" + m.Endpoint, Credentials: creds(m)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	whole, a, ab := open(""), open("a"), open("/a/b/")
	buckettest.Put(t, whole, "a/b/c", []byte("abc"), bucket.PutOptions{})
	buckettest.Put(t, whole, "ab/x", []byte("not under a/"), bucket.PutOptions{})
	buckettest.CheckContent(t, ab, "c", []byte("abc"))
	buckettest.CheckContent(t, a, "b/c", []byte("abc"))
	l, err := a.List(context.Background(), "", bucket.ListOptions{Recursive: true})
	if err != nil || len(l) != 1 || l[0].Key != "b/c" {
		t.Errorf("list of prefix a = %+v, %v; want only b/c", l, err)
	}
	if got, want := ab.String(), "s3://"+name+"/a/b"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := ab.Stat(context.Background(), "missing"); err == nil || !strings.Contains(err.Error(), "s3://"+name+"/a/b/missing") {
		t.Errorf("error %v does not name s3://%s/a/b/missing", err, name)
	}
}

// TestForbiddenIsMissing: on a bucket anyone may read but not list, S3
// answers 403 for a missing key; Exists can count it as missing.
func TestForbiddenIsMissing(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	name := newBucketName()
	m.MakeBucket(t, name, false)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, name)
	if err := m.Client(t).SetBucketPolicy(ctx, name, policy); err != nil {
		t.Fatal(err)
	}
	owner, err := s3.New(s3.Config{Bucket: name, Endpoint: m.Endpoint, Scheme: "http", Credentials: creds(m)})
	if err != nil {
		t.Fatal(err)
	}
	buckettest.Put(t, owner, "present.narinfo", []byte("StorePath: x\n"), bucket.PutOptions{})
	anon, err := s3.New(s3.Config{Bucket: name, Endpoint: m.Endpoint, Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	// AWS answers 403 here, MinIO 404: either way it is missing.
	if ok, err := bucket.Exists(ctx, anon, "missing.narinfo", true); ok || err != nil {
		t.Errorf("Exists(forbiddenIsMissing) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := bucket.Exists(ctx, anon, "present.narinfo", true); !ok || err != nil {
		t.Errorf("Exists(present) = %v, %v; want true, nil", ok, err)
	}
	// An object written a moment ago is seen at once: no negative caching.
	buckettest.Put(t, owner, "missing.narinfo", []byte("now here"), bucket.PutOptions{})
	if ok, err := bucket.Exists(ctx, anon, "missing.narinfo", true); !ok || err != nil {
		t.Errorf("Exists after put = %v, %v; want true, nil", ok, err)
	}
	// The anonymous client may not write.
	if _, err := anon.Put(ctx, "x", strings.NewReader("x"), 1, bucket.PutOptions{}); !errors.Is(err, bucket.ErrForbidden) {
		t.Errorf("anonymous put: %v; want ErrForbidden", err)
	}

	// A bucket the caller may not read at all: 403 for every key.
	private := newBucketName()
	m.MakeBucket(t, private, false)
	anonPrivate, err := s3.New(s3.Config{Bucket: private, Endpoint: m.Endpoint, Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = anonPrivate.Stat(ctx, "missing.narinfo")
	if !errors.Is(err, bucket.ErrForbidden) || errors.Is(err, bucket.ErrNotFound) || bucket.IsTransient(err) {
		t.Fatalf("anonymous stat in a private bucket: %v; want ErrForbidden only, not transient", err)
	}
	if ok, err := bucket.Exists(ctx, anonPrivate, "missing.narinfo", true); ok || err != nil {
		t.Errorf("Exists(forbiddenIsMissing) on 403 = %v, %v; want false, nil", ok, err)
	}
	if ok, err := bucket.Exists(ctx, anonPrivate, "missing.narinfo", false); ok || !errors.Is(err, bucket.ErrForbidden) {
		t.Errorf("Exists on 403 = %v, %v; want false, ErrForbidden", ok, err)
	}
}

// TestNoSecretInErrors: a wrong secret key fails with an error that
// names the object but not the secret.
func TestNoSecretInErrors(t *testing.T) {
	m := testenv.StartMinIO(t)
	name := newBucketName()
	m.MakeBucket(t, name, false)
	const secret = "wrong-secret-value-1234567890"
	b, err := s3.New(s3.Config{Bucket: name, Endpoint: m.Endpoint, Scheme: "http",
		Credentials: &s3.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: secret, SessionToken: "token-secret-abcdef"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Put(context.Background(), "k", strings.NewReader("x"), 1, bucket.PutOptions{})
	if err == nil {
		t.Fatal("put with a wrong secret succeeded")
	}
	if bucket.IsTransient(err) {
		t.Errorf("an authentication failure is classified transient: %v", err)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v %#v", err, b.Config())} {
		if strings.Contains(s, secret) || strings.Contains(s, "token-secret-abcdef") {
			t.Errorf("a secret leaked: %s", s)
		}
	}
	if !strings.Contains(err.Error(), "s3://"+name+"/k") {
		t.Errorf("error %q does not name the object", err)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want s3.Config
		err  string
	}{
		{in: "s3://releases", want: s3.Config{Bucket: "releases"}},
		{in: "s3://releases/lix/", want: s3.Config{Bucket: "releases", Prefix: "lix"}},
		{in: "s3://docs/a/b?region=garage&endpoint=http://127.0.0.1:3900&addressing-style=path",
			want: s3.Config{Bucket: "docs", Prefix: "a/b", Region: "garage", Endpoint: "http://127.0.0.1:3900", AddressingStyle: "path"}},
		{in: "s3://c?endpoint=s3.example.com&scheme=http", want: s3.Config{Bucket: "c", Endpoint: "s3.example.com", Scheme: "http"}},
		{in: "s3://c?profile=lix&multipart-chunk-size=16777216", want: s3.Config{Bucket: "c", Profile: "lix", PartSize: 16 << 20}},
		{in: "s3://c?buffer-size=5242880", want: s3.Config{Bucket: "c", PartSize: 5 << 20}},
		{in: "s3://c?buffer-size=5242880&multipart-chunk-size=5242880", err: "not both"},
		{in: "s3://c?multipart-chunk-size=5MiB", err: "want a number of bytes"},
		{in: "s3://c?multipart-chunk-size=1048576", err: "want a number of bytes"},
		{in: "s3://c?compression=zstd", err: `unknown parameter "compression"`},
		{in: "s3://c?scheme=ftp", err: "want http or https"},
		{in: "s3://c?addressing-style=dns", err: "want auto, path or virtual"},
		{in: "s3://key:secret@c", err: "credentials do not belong"},
		{in: "s3:///prefix", err: "no bucket name"},
		{in: "file:///x", err: "want s3://"},
		{in: "s3://c?region=a&region=b", err: "given 2 times"},
	}
	for _, tc := range tests {
		got, err := s3.ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) = %v; want error containing %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q): error shows the secret: %v", tc.in, err)
			}
			continue
		}
		if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		cfg s3.Config
		err string
	}{
		{s3.Config{Bucket: "bad name!"}, "bucket name"},
		{s3.Config{Bucket: "okay", Prefix: "a/../b"}, "invalid key"},
		{s3.Config{Bucket: "okay", Endpoint: "http://h:1", Scheme: "https"}, "conflicts"},
		{s3.Config{Bucket: "okay", Endpoint: "http://u:p@h:1"}, "credentials do not belong"},
		{s3.Config{Bucket: "okay", Endpoint: "http://h:1/path"}, "only scheme://host"},
		{s3.Config{Bucket: "okay", AddressingStyle: "x"}, "addressing-style"},
		{s3.Config{Bucket: "okay", PartSize: 1 << 20}, "part size"},
	}
	for _, tc := range tests {
		if _, err := s3.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("New(%+v) = %v; want error containing %q", tc.cfg, err, tc.err)
		}
	}
	b, err := s3.New(s3.Config{Bucket: "okay", Prefix: "/p/"})
	if err != nil {
		t.Fatal(err)
	}
	if c := b.Config(); c.Region != "us-east-1" || c.PartSize != s3.DefaultPartSize || c.PartConcurrency != 4 || c.Prefix != "p" {
		t.Errorf("defaults: %+v", c)
	}
}
