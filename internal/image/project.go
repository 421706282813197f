package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/archive"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/nixbuild"
)

// HostSystem is the Nix system of this machine (x86_64-linux, …).
func HostSystem() string {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "riscv64": "riscv64", "ppc64le": "powerpc64le", "s390x": "s390x", "loong64": "loongarch64"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	return arch + "-" + runtime.GOOS
}

// Systems are the systems im is built for: its systems, or this
// machine's when it lists none.
func Systems(im *config.Image) []string {
	if len(im.Systems) > 0 {
		return im.Systems
	}
	return []string{HostSystem()}
}

// BuildAll resolves every [[images]] entry of cfg for each of its systems
// with Nix and builds them into opts.Dir (release/images): what the build
// stage calls. version is the release version (the tag of the outputs);
// vars are the release's template variables.
func BuildAll(ctx context.Context, cfg *config.Config, nix *nixbuild.Nix, version string, vars map[string]string, opts BuildOptions) ([]*Result, error) {
	var inputs []*Input
	for i := range cfg.Images {
		im := &cfg.Images[i]
		for _, sys := range Systems(im) {
			opts.say("resolving image %s for %s", im.Name, sys)
			in, err := Resolve(ctx, nix, im, sys, version, vars)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, in)
		}
	}
	return Build(ctx, inputs, opts)
}

// LayoutPath is where Build puts the OCI layout of image name for system.
func LayoutPath(dir, name, system string) string { return filepath.Join(dir, name+"-"+system) }

// BuiltSources returns the push sources of image name built into dir
// (release/images) for version, one per system; an error names what is
// missing and says to build first. This is what the upload stage pushes.
func BuiltSources(dir, name string, systems []string, version string) ([]Source, error) {
	var out []Source
	for _, sys := range systems {
		layout := LayoutPath(dir, name, sys)
		data, err := fsutil.ReadFile(filepath.Join(layout, "index.json"), fsutil.MaxManifestJSON)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("image %s for %s was not built (%v): run releng build (or releng image build)", name, sys, err)
		}
		if err != nil {
			return nil, fmt.Errorf("image %s for %s: %w", name, sys, err)
		}
		var idx oci.Index
		if err := json.Unmarshal(data, &idx); err != nil || len(idx.Manifests) != 1 {
			return nil, fmt.Errorf("%s: not an OCI layout written by releng image build: run it again", layout)
		}
		if got := idx.Manifests[0].Annotations[oci.AnnotationRefName]; got != version {
			return nil, fmt.Errorf("%s holds version %q, not %s: run releng build (or releng image build) again", layout, got, version)
		}
		out = append(out, Source{Layout: layout})
	}
	return out, nil
}

// FindArchives lists the docker-archives Nix built in a version directory
// (NAME-VERSION-docker-image-SYSTEM.tar.gz), sorted.
func FindArchives(versionDir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(versionDir, "*-docker-image-*.tar.gz"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// ArchiveSources validates each docker-archive (archive.Inspect) and
// returns them as push sources; nothing is sent before all are valid.
func ArchiveSources(files []string) ([]Source, error) {
	var out []Source
	for _, f := range files {
		a, err := archive.Inspect(f)
		if err != nil {
			return nil, err
		}
		out = append(out, Source{Archive: a})
	}
	return out, nil
}
