// Package oci holds the OCI image format's JSON documents as releng writes
// them — descriptors, image manifests, indexes, image configs — and the
// mapping from Nix systems to OCI platforms. Documents marshal
// deterministically (struct field order, sorted map keys), so the same
// image always has the same digest.
package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/releng-project/releng/internal/config"
)

// Media types and annotations.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
	// Docker's equivalents, found in images Nix built and registries return.
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"

	// AnnotationRefName names a tag in an OCI layout's index.json.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// LayoutFile is the content of an OCI layout's oci-layout file.
	LayoutFile = `{"imageLayoutVersion":"1.0.0"}`
)

// Descriptor points at a blob.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is the platform of an image manifest in an index.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// Index is an OCI image index: a multi-platform image, or an OCI layout's
// index.json.
type Index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	Manifests     []Descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// ConfigFile is an OCI image configuration.
type ConfigFile struct {
	Created      string             `json:"created,omitempty"`
	Architecture string             `json:"architecture"`
	Variant      string             `json:"variant,omitempty"`
	OS           string             `json:"os"`
	Config       config.ImageConfig `json:"config"`
	RootFS       RootFS             `json:"rootfs"`
	History      []History          `json:"history,omitempty"`
}

// RootFS lists the uncompressed digests of the layers, bottom first.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// History describes how a layer was made.
type History struct {
	Created    string `json:"created,omitempty"`
	CreatedBy  string `json:"created_by,omitempty"`
	Comment    string `json:"comment,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

// Digest returns the sha256 digest of data in OCI notation.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Hex returns the hexadecimal part of a digest (the blob's file name).
func Hex(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// PlatformOf maps a Nix system to an OCI platform: x86_64-linux → amd64,
// aarch64-linux → arm64 and so on. Only Linux systems can be images.
func PlatformOf(system string) (Platform, error) {
	arch, os, ok := strings.Cut(system, "-")
	if !ok || os != "linux" {
		return Platform{}, fmt.Errorf("system %q: container images are for Linux systems only (e.g. x86_64-linux, aarch64-linux)", system)
	}
	p := Platform{OS: "linux"}
	switch arch {
	case "x86_64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
		p.Variant = "v8"
	case "i686":
		p.Architecture = "386"
	case "armv7l":
		p.Architecture, p.Variant = "arm", "v7"
	case "armv6l":
		p.Architecture, p.Variant = "arm", "v6"
	case "riscv64":
		p.Architecture = "riscv64"
	case "powerpc64le":
		p.Architecture = "ppc64le"
	case "s390x":
		p.Architecture = "s390x"
	case "loongarch64":
		p.Architecture = "loong64"
	default:
		return Platform{}, fmt.Errorf("system %q: no OCI architecture known for %q", system, arch)
	}
	return p, nil
}
