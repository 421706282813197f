// Package image builds and publishes container images of Nix closures
// natively (SPEC §8): no docker, no skopeo, no nixpkgs image builder.
//
// An Input is one image for one system: a closure with its roots, explicit
// layer groups, a root tree and the image config. Plan decides its layers
// (package layering), Build writes an OCI layout and a docker-archive from
// the same reproducible blobs (packages layer, nixdb, archive), and Push
// sends images — from a build, straight from the store, or from a
// docker-archive Nix built — to a registry or an OCI layout as one
// multi-platform index per tag (package registry). A local cache maps each
// layer's inputs to its digests, so that an unchanged layer is recognised
// without being rebuilt.
//
// The package is silent: progress goes to an optional callback.
package image

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/layering"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/nixbuild"
	"github.com/releng-project/releng/internal/nixstore"
)

// DefaultCreated is the creation time of images that configure none.
var DefaultCreated = time.Unix(1, 0).UTC()

// Input is one image for one system, ready to be planned.
type Input struct {
	Name    string // the [[images]] name
	System  string // Nix system, e.g. x86_64-linux
	Version string // tag of the OCI layout and the docker-archive
	// StoreDir is where the store paths are read on this machine
	// (default /nix/store); inside the image they are under /nix/store.
	StoreDir string
	// Closure is the path information of every store path of the image.
	Closure []nixstore.PathInfo
	// Contents are the image's own store paths (each keeps its own layer).
	Contents []string
	// Groups are explicit layer groups: each the paths whose closure it holds.
	Groups [][]string
	// Root is a store path whose tree is copied to / ("" for none).
	Root         string
	Config       config.ImageConfig
	TmpDirs      []string
	NixDB        bool
	Created      time.Time
	MaxLayers    int
	MaxLayerSize int64
	Compression  layer.Compression
}

var nameRe = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// FromConfig returns an Input with the settings of im for system; the
// closure, contents, groups and root are left to Resolve.
func FromConfig(im *config.Image, system, version string) (*Input, error) {
	size, err := config.ParseSize(im.MaxLayerSize)
	if err != nil {
		return nil, &config.Error{Msg: fmt.Sprintf("image %q: max_layer_size: %v", im.Name, err)}
	}
	created := DefaultCreated
	if im.Created != "" {
		created, err = time.Parse(time.RFC3339, im.Created)
		if err != nil {
			return nil, &config.Error{Msg: fmt.Sprintf("image %q: created = %q: write an RFC 3339 time such as 2025-01-18T00:00:00Z", im.Name, im.Created)}
		}
	}
	in := &Input{
		Name: im.Name, System: system, Version: version,
		Config: im.Config, TmpDirs: im.TmpDirs, NixDB: im.NixDB, Created: created.UTC(),
		MaxLayers: im.MaxLayers, MaxLayerSize: size, Compression: layer.Compression(im.Compression),
	}
	if in.Compression == "" {
		in.Compression = layer.Gzip
	}
	return in, in.validateSettings()
}

func (in *Input) validateSettings() error {
	if !nameRe.MatchString(in.Name) {
		return &config.Error{Msg: fmt.Sprintf("image name %q: use lower-case letters and digits separated by '.', '_' or '-' (it becomes the repository name in docker-archives)", in.Name)}
	}
	if in.MaxLayers < 2 || in.MaxLayers > layering.MaxLayers {
		return &config.Error{Msg: fmt.Sprintf("image %q: max_layers = %d: must be between 2 and %d (Docker and overlay2 fail past about 125 layers)", in.Name, in.MaxLayers, layering.MaxLayers)}
	}
	if in.MaxLayerSize <= 0 {
		return &config.Error{Msg: fmt.Sprintf("image %q: max_layer_size must be positive", in.Name)}
	}
	if err := in.Compression.Validate(); err != nil {
		return &config.Error{Msg: fmt.Sprintf("image %q: %v", in.Name, err)}
	}
	if _, err := oci.PlatformOf(in.System); err != nil {
		return &config.Error{Msg: fmt.Sprintf("image %q: %v", in.Name, err)}
	}
	if err := registry.ValidTag(in.Version); err != nil {
		return fmt.Errorf("image %q: version %q cannot be an image tag: %v", in.Name, in.Version, err)
	}
	for _, d := range in.TmpDirs {
		if !strings.HasPrefix(d, "/") {
			return &config.Error{Msg: fmt.Sprintf("image %q: tmp_dirs entry %q must be an absolute path", in.Name, d)}
		}
	}
	return nil
}

// Resolve builds the installables of im for system with Nix and returns
// the Input with its closure. vars are the release's template variables;
// {system} is added.
func Resolve(ctx context.Context, nix *nixbuild.Nix, im *config.Image, system, version string, vars map[string]string) (*Input, error) {
	in, err := FromConfig(im, system, version)
	if err != nil {
		return nil, err
	}
	v := map[string]string{}
	for k, x := range vars {
		v[k] = x
	}
	v["system"] = system
	expand := func(what string, list []string) ([]string, error) {
		var out []string
		for _, s := range list {
			e, err := config.Expand(s, v)
			if err != nil {
				return nil, &config.Error{Msg: fmt.Sprintf("image %q: %s: %v", im.Name, what, err)}
			}
			out = append(out, e)
		}
		return out, nil
	}
	contents, err := expand("contents", im.Contents)
	if err != nil {
		return nil, err
	}
	if len(contents) == 0 && im.Root == "" {
		return nil, &config.Error{Msg: fmt.Sprintf("image %q: nothing to put in it: set contents (installables) or root", im.Name)}
	}
	var roots []string
	if len(contents) > 0 {
		if in.Contents, err = nix.Outputs(ctx, contents...); err != nil {
			return nil, fmt.Errorf("image %s (%s): contents: %w", im.Name, system, err)
		}
		roots = append(roots, in.Contents...)
	}
	for i, g := range im.Layers {
		group, err := expand(fmt.Sprintf("layers[%d]", i), g)
		if err != nil {
			return nil, err
		}
		if len(group) == 0 {
			continue
		}
		paths, err := nix.Outputs(ctx, group...)
		if err != nil {
			return nil, fmt.Errorf("image %s (%s): layers[%d]: %w", im.Name, system, i, err)
		}
		in.Groups = append(in.Groups, paths)
		roots = append(roots, paths...)
	}
	if im.Root != "" {
		r, err := expand("root", []string{im.Root})
		if err != nil {
			return nil, err
		}
		paths, err := nix.Outputs(ctx, r...)
		if err != nil {
			return nil, fmt.Errorf("image %s (%s): root: %w", im.Name, system, err)
		}
		if len(paths) != 1 {
			return nil, &config.Error{Msg: fmt.Sprintf("image %q: root %q has %d outputs; name one (e.g. .#pkg.out)", im.Name, im.Root, len(paths))}
		}
		in.Root = paths[0]
		roots = append(roots, in.Root)
	}
	if in.Closure, err = nix.ClosureInfo(ctx, roots...); err != nil {
		return nil, fmt.Errorf("image %s (%s): %w", im.Name, system, err)
	}
	return in, nil
}

// storeDir is where paths are read on this machine.
func (in *Input) storeDir() string {
	if in.StoreDir != "" {
		return in.StoreDir
	}
	return nixstore.DefaultStoreDir
}

// Base is the name of the image's outputs: NAME-SYSTEM.
func (in *Input) Base() string { return in.Name + "-" + in.System }
