package oci

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPlatformOf(t *testing.T) {
	tests := []struct {
		system, want, err string
	}{
		{"x86_64-linux", "amd64//linux", ""},
		{"aarch64-linux", "arm64/v8/linux", ""},
		{"armv7l-linux", "arm/v7/linux", ""},
		{"i686-linux", "386//linux", ""},
		{"riscv64-linux", "riscv64//linux", ""},
		{"x86_64-darwin", "", "Linux systems only"},
		{"vax-linux", "", "no OCI architecture"},
		{"linux", "", "Linux systems only"},
	}
	for _, tc := range tests {
		p, err := PlatformOf(tc.system)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.system, err, tc.err)
			}
			continue
		}
		if got := p.Architecture + "/" + p.Variant + "/" + p.OS; err != nil || got != tc.want {
			t.Errorf("%s = %s, %v; want %s", tc.system, got, err, tc.want)
		}
	}
}

// Documents marshal deterministically: field order, sorted annotations.
func TestDeterministicJSON(t *testing.T) {
	idx := Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{{MediaType: MediaTypeManifest, Digest: Digest([]byte("x")), Size: 1, Platform: &Platform{Architecture: "amd64", OS: "linux"}}},
		Annotations: map[string]string{"z": "1", "a": "2"}}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","size":1,"platform":{"architecture":"amd64","os":"linux"}}],"annotations":{"a":"2","z":"1"}}`
	if string(b) != want {
		t.Errorf("index JSON:\n%s\nwant\n%s", b, want)
	}
	if Hex(Digest(nil)) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Error("Digest/Hex")
	}
}
