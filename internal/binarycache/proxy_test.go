package binarycache

import (
	"testing"

	"github.com/releng-project/releng/internal/bucket/buckettest"
)

func newProxy(t *testing.T, target string) *buckettest.Proxy {
	return buckettest.NewProxy(t, target)
}
