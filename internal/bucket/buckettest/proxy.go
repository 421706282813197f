package buckettest

import (
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/testenv"
)

// Fault is what the Proxy does to a request instead of forwarding it: a
// testenv.FaultProxy action.
type Fault = testenv.Action

var (
	// Fault503 answers 503 Service Unavailable with an S3 SlowDown error.
	Fault503 = Fault{Kind: testenv.Status, Status: 503, Code: "SlowDown"}
	// FaultReset resets the connection (TCP RST) before reading the body.
	FaultReset = Fault{Kind: testenv.Reset}
	// FaultResetMidBody reads part of the request body (32 KiB), then
	// resets the connection.
	FaultResetMidBody = Fault{Kind: testenv.CutRequest, After: 32 << 10}
)

// Request is what the Proxy saw of a request.
type Request = testenv.Request

// Proxy is the recording fault proxy of internal/testenv in front of a
// server (MinIO); Fail queues faults for the next requests.
type Proxy = testenv.FaultProxy

// NewProxy starts a proxy to target (host:port), stopped when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	return testenv.StartFaultProxy(t, target, 1)
}

// ShortIdle makes bucket.IdleTimeout, the stall timeout of every HTTP
// request to a store or registry, d until t ends.
func ShortIdle(t testing.TB, d time.Duration) {
	bucket.IdleTimeout.Store(int64(d))
	t.Cleanup(func() { bucket.IdleTimeout.Store(0) })
}
