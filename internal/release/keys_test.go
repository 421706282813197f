package release

import (
	"testing"

	"github.com/releng-project/releng/internal/nixstore"
)

func loadKeyForTest(path string) (string, error) {
	k, err := nixstore.LoadSecretKeyFile(path, true)
	if err != nil {
		return "", err
	}
	return k.PublicKey().String(), nil
}

func genKey(t *testing.T, path string) {
	t.Helper()
	if _, err := nixstore.GenerateKeyFile("staging-1", path); err != nil {
		t.Fatal(err)
	}
}
