package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOVersion is the pinned MinIO the tests use (installed by the README's
// test command).
const MinIOVersion = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO is a running MinIO server.
type MinIO struct {
	// Endpoint is host:port.
	Endpoint  string
	AccessKey string
	SecretKey string
	Dir       string
	// Process is the server's process (to pause it with SIGSTOP).
	Process *os.Process
	// RootCAs trusts the server's certificate when it serves HTTPS
	// (StartMinIOTLS); nil for plain HTTP.
	RootCAs *x509.CertPool
}

func minioBinary() string { return goBinary("minio") }

// StartMinIO starts a MinIO server on a random port with its data in a temp
// dir, stopped when t ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	return startMinIO(t, nil)
}

// StartMinIOTLS starts a MinIO server as StartMinIO does, serving HTTPS
// with a certificate for 127.0.0.1 made for this test; m.RootCAs trusts it.
func StartMinIOTLS(t testing.TB) *MinIO {
	t.Helper()
	return startMinIO(t, selfSignedCert(t))
}

func startMinIO(t testing.TB, cert *testCert) *MinIO {
	t.Helper()
	bin := minioBinary()
	if bin == "" {
		Missing(t, "minio", "go install "+MinIOVersion)
	}
	m := &MinIO{
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		AccessKey: "releng-test",
		SecretKey: "releng-test-secret-" + fmt.Sprint(time.Now().UnixNano()),
		Dir:       t.TempDir(),
	}
	console := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	args := []string{"server", m.Dir, "--address", m.Endpoint, "--console-address", console, "--quiet"}
	if cert != nil {
		// MinIO reads public.crt and private.key from --certs-dir.
		dir := t.TempDir()
		for name, data := range map[string][]byte{"public.crt": cert.certPEM, "private.key": cert.keyPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		args = append(args, "--certs-dir", dir)
		m.RootCAs = cert.pool
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	log := startProcess(t, cmd, "minio")
	m.Process = cmd.Process
	waitHTTPWith(t, &http.Client{Timeout: time.Second, Transport: m.Transport()}, m.URL()+"/minio/health/live", 200, 30*time.Second, log)
	return m
}

// URL is the server's base URL.
func (m *MinIO) URL() string {
	if m.RootCAs != nil {
		return "https://" + m.Endpoint
	}
	return "http://" + m.Endpoint
}

// Client returns a minio-go client with the root credentials.
func (m *MinIO) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(m.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure:    m.RootCAs != nil,
		Transport: m.Transport(),
		Region:    "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Transport is an HTTP transport that trusts the server's certificate
// (http.DefaultTransport for plain HTTP).
func (m *MinIO) Transport() http.RoundTripper {
	if m.RootCAs == nil {
		return http.DefaultTransport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: m.RootCAs}
	return t
}

// MakeBucket creates a bucket; with public it is readable (and listable)
// anonymously, as a Nix binary cache served over HTTP must be.
func (m *MinIO) MakeBucket(t testing.TB, name string, public bool) {
	t.Helper()
	ctx := context.Background()
	c := m.Client(t)
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	if public {
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[`+
			`{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%[1]s/*"]},`+
			`{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:ListBucket","s3:GetBucketLocation"],"Resource":["arn:aws:s3:::%[1]s"]}]}`, name)
		if err := c.SetBucketPolicy(ctx, name, policy); err != nil {
			t.Fatalf("make bucket %s public: %v", name, err)
		}
	}
}

// AWSEnv returns environment variables giving the standard AWS chain the
// server's credentials.
func (m *MinIO) AWSEnv() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_REGION=us-east-1",
	}
}
