package testenv

import (
	"runtime"
	"testing"
)

// CheckAllocBytes runs f and fails the test if it allocated more than
// limit bytes: fuzz targets call it to check that a reader's memory is
// bounded by its input's size, not by lengths the input declares. The
// count is process-wide, so limit has room for the fuzzing engine.
func CheckAllocBytes(t testing.TB, what string, limit uint64, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > limit {
		t.Fatalf("%s allocated %d bytes, more than the %d its input allows", what, n, limit)
	}
}
