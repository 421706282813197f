package registry

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/releng-project/releng/internal/fsutil"
)

// DefaultKeychain finds credentials as Docker and the containers tools
// (skopeo, podman) do: Docker's config.json ($DOCKER_CONFIG or ~/.docker)
// with its credsStore and credHelpers, then containers' auth.json
// ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
// $XDG_CONFIG_HOME/containers/auth.json or ~/.config/containers/auth.json).
// Registries without credentials are used anonymously.
func DefaultKeychain() authn.Keychain { return keychain{} }

type keychain struct{}

func (keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	a, err := authn.DefaultKeychain.Resolve(target)
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	if a != authn.Anonymous {
		return a, nil
	}
	for _, p := range containersAuthFiles() {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		data, err := fsutil.ReadAllLimited(f, p, fsutil.MaxSmallState)
		f.Close()
		if err != nil {
			return nil, err
		}
		cf, err := dockerconfig.LoadFromReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		for _, key := range []string{target.String(), target.RegistryStr()} {
			cfg, err := cf.GetAuthConfig(key)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", p, err)
			}
			cfg.ServerAddress = ""
			if cfg != (types.AuthConfig{}) {
				return authn.FromConfig(authn.AuthConfig{
					Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
					IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken,
				}), nil
			}
		}
	}
	return authn.Anonymous, nil
}

// containersAuthFiles lists containers-auth.json(5)'s locations, in order.
func containersAuthFiles() []string {
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfg = filepath.Join(home, ".config")
		}
	}
	if cfg != "" {
		files = append(files, filepath.Join(cfg, "containers", "auth.json"))
	}
	return files
}
