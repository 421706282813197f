package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/retry"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		err string // "" = valid
	}{
		{"a", ""},
		{"nar/abc.nar.zst", ""},
		{"manual/lix/2.93/index.html", ""},
		{".hidden/x", ""},
		{"a..b/..c", ""},
		{"é/ü", ""},
		{"", "empty key"},
		{"/abs", "leading '/'"},
		{"a/", "ends with '/'"},
		{"a//b", "empty segment"},
		{"..", "segment .."},
		{"a/../b", "segment .."},
		{"../x", "segment .."},
		{".", "segment ."},
		{"a/./b", "segment ."},
		{"a\x00b", "NUL"},
		{"a\nb", "control character"},
		{"a\\b", "backslash"},
		{"\xff", "UTF-8"},
		{strings.Repeat("x", bucket.MaxKeyLen), ""},
		{strings.Repeat("x", bucket.MaxKeyLen+1), "longer than"},
	}
	for _, tc := range tests {
		err := bucket.ValidateKey(tc.key)
		if tc.err == "" {
			if err != nil {
				t.Errorf("ValidateKey(%q) = %v; want nil", tc.key, err)
			}
			continue
		}
		if !errors.Is(err, bucket.ErrInvalidKey) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ValidateKey(%q) = %v; want ErrInvalidKey saying %q", tc.key, err, tc.err)
		}
		if len(tc.key) < 100 && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.key)) {
			t.Errorf("ValidateKey(%q) = %v: does not name the key", tc.key, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "a/b", "a/b/", "nar/ab"} {
		if err := bucket.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"/", "/a", "a//", "../", "a/../", "a\x00"} {
		if err := bucket.ValidatePrefix(p); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("ValidatePrefix(%q) = %v; want ErrInvalidKey", p, err)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsTransient(t *testing.T) {
	wrap := func(err error) error { return &bucket.Error{Op: "put", URL: "s3://b/k", Err: err} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"503", &bucket.ServerError{StatusCode: 503}, true},
		{"500 wrapped", wrap(&bucket.ServerError{StatusCode: 500, Code: "InternalError"}), true},
		{"429", &bucket.ServerError{StatusCode: 429}, true},
		{"408", &bucket.ServerError{StatusCode: 408}, true},
		{"SlowDown as 400", &bucket.ServerError{StatusCode: 400, Code: "SlowDown"}, true},
		{"RequestTimeout", &bucket.ServerError{StatusCode: 400, Code: "RequestTimeout"}, true},
		{"404", wrap(&bucket.ServerError{StatusCode: 404, Code: "NoSuchKey"}), false},
		{"403", &bucket.ServerError{StatusCode: 403, Code: "AccessDenied"}, false},
		{"400 bad digest", &bucket.ServerError{StatusCode: 400, Code: "BadDigest"}, false},
		{"not found", wrap(bucket.ErrNotFound), false},
		{"invalid key", wrap(fmt.Errorf("%w: x", bucket.ErrInvalidKey)), false},
		{"size mismatch", bucket.ErrSizeMismatch, false},
		{"checksum mismatch", bucket.ErrChecksumMismatch, false},
		{"not rewindable", bucket.ErrNotRewindable, false},
		{"canceled", wrap(context.Canceled), false},
		{"deadline", context.DeadlineExceeded, true},
		{"conn reset", wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), true},
		{"conn refused", &url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"unexpected EOF", fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF), true},
		{"server hung up", &url.Error{Op: "Put", URL: "http://x", Err: io.EOF}, true},
		{"timeout", &url.Error{Op: "Get", URL: "http://x", Err: timeoutErr{}}, true},
		{"dns temporary", &net.DNSError{Err: "try again", IsTemporary: true}, true},
		{"dns no such host", &net.DNSError{Err: "no such host", IsNotFound: true}, false},
		{"reset as text", errors.New("read tcp: connection reset by peer"), true},
		{"body error", &bucket.BodyError{Err: syscall.ECONNRESET}, false},
		{"permanent", bucket.Permanent(&bucket.ServerError{StatusCode: 503}), false},
		{"read-only", wrap(fmt.Errorf("%w: over HTTP", bucket.ErrReadOnly)), false},
		{"no listing", wrap(fmt.Errorf("%w: over HTTP", bucket.ErrNoListing)), false},
		{"plain", errors.New("something else"), false},
	}
	for _, tc := range tests {
		if got := bucket.IsTransient(tc.err); got != tc.want {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestServerErrorIs(t *testing.T) {
	tests := []struct {
		err            *bucket.ServerError
		notFound, forb bool
	}{
		{&bucket.ServerError{StatusCode: 404, Code: "NoSuchKey"}, true, false},
		{&bucket.ServerError{StatusCode: 404, Code: "NoSuchBucket"}, false, false},
		{&bucket.ServerError{StatusCode: 404, Code: "NoSuchUpload"}, false, false},
		{&bucket.ServerError{StatusCode: 403, Code: "AccessDenied"}, false, true},
		{&bucket.ServerError{StatusCode: 500}, false, false},
	}
	for _, tc := range tests {
		if got := errors.Is(tc.err, bucket.ErrNotFound); got != tc.notFound {
			t.Errorf("%v: Is(ErrNotFound) = %v", tc.err, got)
		}
		if got := errors.Is(tc.err, bucket.ErrForbidden); got != tc.forb {
			t.Errorf("%v: Is(ErrForbidden) = %v", tc.err, got)
		}
	}
}

// TestServerErrorRetryAfter: the Retry-After a server error carries is
// seen by the retry policy through the *Error around it.
func TestServerErrorRetryAfter(t *testing.T) {
	err := &bucket.Error{Op: "get", URL: "s3://b/k", Err: &bucket.ServerError{StatusCode: 503, Code: "SlowDown", Delay: 3 * time.Second}}
	if got := retry.After(err); got != 3*time.Second {
		t.Errorf("retry.After = %s; want 3s", got)
	}
	if got := retry.After(&bucket.ServerError{StatusCode: 503}); got != 0 {
		t.Errorf("retry.After without Retry-After = %s", got)
	}
}

func TestChoosePartSize(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		size, min, want int64
	}{
		{0, 0, 5 * mib},
		{1, 16 * mib, 16 * mib},
		{100 * mib, 16 * mib, 16 * mib},
		{2 << 30, 16 * mib, 16 * mib},        // 2 GiB: 128 parts
		{200 << 30, 16 * mib, 21 * mib},      // 200 GiB: 20.48 MiB → 21 MiB
		{-1, 16 * mib, 525 * mib},            // unknown: 5 TiB in 10,000 parts
		{bucket.MaxStreamSize, 0, 525 * mib}, //
		{100 << 40, 0, bucket.MaxPartSize},   // beyond S3: capped
		{10000 * 5 * mib, 0, 5 * mib},        // exactly 10,000 parts
		{10000*5*mib + 1, 0, 6 * mib},        // one byte more
		{3 * mib, 1 * mib /* below the minimum */, 5 * mib},
	}
	for _, tc := range tests {
		got := bucket.ChoosePartSize(tc.size, tc.min)
		if got != tc.want {
			t.Errorf("ChoosePartSize(%d, %d) = %d (%.2f MiB), want %d", tc.size, tc.min, got, float64(got)/mib, tc.want)
		}
		size := tc.size
		if size < 0 {
			size = bucket.MaxStreamSize
		}
		if size <= 10000*int64(bucket.MaxPartSize) && bucket.PartCount(size, got) > bucket.MaxParts {
			t.Errorf("ChoosePartSize(%d) = %d needs %d parts", tc.size, got, bucket.PartCount(size, got))
		}
	}
}

func TestRewind(t *testing.T) {
	// A seeker goes back to where it was, not to 0.
	r := strings.NewReader("headerBODY")
	r.Seek(6, io.SeekStart)
	rewind, err := bucket.Rewind(r)
	if err != nil || rewind == nil {
		t.Fatalf("Rewind(strings.Reader) = %v, %v", rewind != nil, err)
	}
	io.ReadAll(r)
	if err := rewind(); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "BODY" {
		t.Errorf("after rewind read %q, want BODY", b)
	}
	// A plain reader cannot be rewound.
	if rewind, _ := bucket.Rewind(io.MultiReader(r)); rewind != nil {
		t.Error("Rewind of a plain reader is not nil")
	}
	// A pipe is an *os.File that cannot seek.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if rewind, _ := bucket.Rewind(pr); rewind != nil {
		t.Error("Rewind of a pipe is not nil")
	}
	// A Reopener opens again.
	opens := 0
	ro := bucket.Reopen(func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(strings.NewReader(fmt.Sprintf("attempt %d", opens))), nil
	})
	rewind, _ = bucket.Rewind(ro)
	b1, _ := io.ReadAll(ro)
	rewind()
	b2, _ := io.ReadAll(ro)
	if string(b1) != "attempt 1" || string(b2) != "attempt 2" {
		t.Errorf("Reopener read %q then %q", b1, b2)
	}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		size, got int64
		extra     bool
		ok        bool
	}{
		{-1, 5, false, true}, {5, 5, false, true}, {5, 4, false, false}, {5, 5, true, false}, {0, 0, false, true},
	}
	for _, tc := range tests {
		err := bucket.CheckSize(tc.size, tc.got, tc.extra)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, bucket.ErrSizeMismatch)) {
			t.Errorf("CheckSize(%d, %d, %v) = %v", tc.size, tc.got, tc.extra, err)
		}
	}
	good := strings.Repeat("ab", 32)
	for _, s := range []string{"", good} {
		if err := bucket.ValidSHA256(s); err != nil {
			t.Errorf("ValidSHA256(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"ab", strings.ToUpper(good), strings.Repeat("zz", 32)} {
		if bucket.ValidSHA256(s) == nil {
			t.Errorf("ValidSHA256(%q) = nil", s)
		}
	}
	if !bucket.SameObject(bucket.ObjectInfo{Size: 3, SHA256: good}, 3, good) ||
		bucket.SameObject(bucket.ObjectInfo{Size: 3}, 3, "") ||
		bucket.SameObject(bucket.ObjectInfo{Size: 4, SHA256: good}, 3, good) {
		t.Error("SameObject is wrong")
	}
}
