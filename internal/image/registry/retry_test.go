package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/releng-project/releng/internal/retry"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestTransientClassification(t *testing.T) {
	status := func(code int) error { return &transport.Error{StatusCode: code} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"500", status(500), true},
		{"502", status(502), true},
		{"503 wrapped", fmt.Errorf("PUT x: %w", status(503)), true},
		{"429", status(429), true},
		{"408", status(408), true},
		{"429 with Retry-After", retry.WithAfter(status(429), time.Second), true},
		{"TOOMANYREQUESTS", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.TooManyRequestsErrorCode}}}, true},
		{"404", status(404), false},
		{"401", status(401), false},
		{"403", status(403), false},
		{"400 DENIED", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, false},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"reset as text", errors.New("write tcp: connection reset by peer"), true},
		{"timeout", fmt.Errorf("HEAD x: %w", timeoutErr{}), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"canceled", context.Canceled, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"digest mismatch", ErrDigestMismatch, false},
		{"plain", errors.New("bad manifest"), false},
	}
	for _, tc := range tests {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient(%v) = %v; want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestRetryAfter: a registry's 429 or 503 carries its Retry-After to the
// retry policy.
func TestRetryAfter(t *testing.T) {
	isolate(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.Contains(r.URL.Path, "/blobs/"):
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	r, err := OpenRemote(ctx, strings.TrimPrefix(srv.URL, "http://")+"/repo", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.HasBlob(ctx, "sha256:"+strings.Repeat("a", 64))
	if !Transient(err) || retry.After(err) != 3*time.Second {
		t.Errorf("HasBlob: %v (transient %v, retry after %s); want transient, 3s", err, Transient(err), retry.After(err))
	}
	err = r.PutManifest(ctx, "v1", "application/vnd.oci.image.index.v1+json", []byte("{}"))
	if !Transient(err) || retry.After(err) != 5*time.Second {
		t.Errorf("PutManifest: %v (transient %v, retry after %s); want transient, 5s", err, Transient(err), retry.After(err))
	}
}
