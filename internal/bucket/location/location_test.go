package location_test

import (
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/bucket/location"
	"github.com/releng-project/releng/internal/bucket/s3"
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
		err      string
	}{
		{in: "release/local/releases", kind: location.Dir, dir: "/work/lix/release/local/releases"},
		{in: "./out/../docs", kind: location.Dir, dir: "/work/lix/docs"},
		{in: "/srv/releases", kind: location.Dir, dir: "/srv/releases"},
		{in: "file:///srv/cache", kind: location.Dir, dir: "/srv/cache"},
		{in: "file://localhost/srv/cache", kind: location.Dir, dir: "/srv/cache"},
		{in: "s3://releases", kind: location.S3, bucket: "releases", endpoint: "http://127.0.0.1:3900", region: "garage"},
		{in: "s3://docs/lix/manual?region=eu-west-1&endpoint=https://s3.example.com", kind: location.S3, bucket: "docs", prefix: "lix/manual", endpoint: "https://s3.example.com", region: "eu-west-1"},
		{in: "", err: "empty"},
		{in: "file://host/x", err: "not supported"},
		{in: "file:relative", err: "absolute"},
		{in: "file:///x?compression=zstd", err: "no ?parameters"},
		{in: "gs://bucket", err: "unsupported scheme"},
		{in: "s3://b?bogus=1", err: "unknown parameter"},
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
		if loc.Kind != tc.kind || loc.Dir != tc.dir || loc.S3.Endpoint != tc.endpoint || loc.S3.Region != tc.region || loc.S3.Bucket != tc.bucket || loc.S3.Prefix != tc.prefix {
			t.Errorf("Parse(%q) = %+v", tc.in, loc)
		}
	}
	if _, err := location.Parse("rel/path", location.Options{}); err == nil {
		t.Error("a relative path without a project root was accepted")
	}
}

func TestOpen(t *testing.T) {
	opts := location.Options{ProjectRoot: "/work/lix", Credentials: &s3.Credentials{AccessKeyID: "id", SecretAccessKey: "secret"}}
	b, err := location.Open("release/local/docs", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(*dir.Bucket); !ok || b.String() != "file:///work/lix/release/local/docs" {
		t.Errorf("Open(relative) = %T %s", b, b)
	}
	b, err = location.Open("s3://releases/lix?endpoint=http://127.0.0.1:9000", opts)
	if err != nil {
		t.Fatal(err)
	}
	sb, ok := b.(*s3.Bucket)
	if !ok || sb.String() != "s3://releases/lix" || sb.Config().Credentials == nil {
		t.Errorf("Open(s3) = %T %s %+v", b, b, sb.Config())
	}
}
