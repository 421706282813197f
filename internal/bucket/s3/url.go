package s3

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
)

// URLParams are the query parameters ParseURL accepts: those of a Nix S3
// store URI (SPEC §9) that say how to reach the bucket, as Nix names
// them. (The binary cache's own parameters — compression, listings,
// signing — and multipart-upload are binarycache's.)
var URLParams = []string{"region", "endpoint", "scheme", "addressing-style", "profile", "multipart-chunk-size", "buffer-size"}

// ParseURL parses s3://bucket[/prefix][?region=R&endpoint=E&scheme=http|https&addressing-style=auto|path|virtual&profile=P&multipart-chunk-size=BYTES]
// into a Config (without credentials; profile= goes to Config.Profile,
// multipart-chunk-size= or its alias buffer-size= to PartSize). Unknown
// parameters are errors, as are credentials in the URL.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("bucket URL %q: %v", raw, err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("bucket URL %q: want s3://bucket[/prefix]", u.Redacted())
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("bucket URL %q: credentials do not belong in the URL (use credentials_command or the AWS chain)", u.Redacted())
	}
	if u.Host == "" {
		return Config{}, fmt.Errorf("bucket URL %q: no bucket name", raw)
	}
	if u.Fragment != "" {
		return Config{}, fmt.Errorf("bucket URL %q: unexpected #fragment", raw)
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	for k, vs := range u.Query() {
		if len(vs) != 1 {
			return Config{}, fmt.Errorf("bucket URL %q: parameter %s given %d times", raw, k, len(vs))
		}
		v := vs[0]
		switch k {
		case "region":
			c.Region = v
		case "endpoint":
			c.Endpoint = v
		case "scheme":
			c.Scheme = v
		case "addressing-style":
			c.AddressingStyle = v
		case "profile":
			c.Profile = v
		case "multipart-chunk-size", "buffer-size":
			if c.PartSize != 0 {
				return Config{}, fmt.Errorf("bucket URL %q: give multipart-chunk-size or buffer-size, not both", raw)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < bucket.MinPartSize || n > bucket.MaxPartSize {
				return Config{}, fmt.Errorf("bucket URL %q: %s=%s: want a number of bytes from %d (5 MiB) to %d (5 GiB)", raw, k, v, bucket.MinPartSize, int64(bucket.MaxPartSize))
			}
			c.PartSize = n
		default:
			return Config{}, fmt.Errorf("bucket URL %q: unknown parameter %q (accepted: %s)", raw, k, strings.Join(URLParams, ", "))
		}
	}
	if c.Scheme != "" && !slices.Contains([]string{"http", "https"}, c.Scheme) {
		return Config{}, fmt.Errorf("bucket URL %q: scheme=%s: want http or https", raw, c.Scheme)
	}
	if c.AddressingStyle != "" && !slices.Contains([]string{"auto", "path", "virtual"}, c.AddressingStyle) {
		return Config{}, fmt.Errorf("bucket URL %q: addressing-style=%s: want auto, path or virtual", raw, c.AddressingStyle)
	}
	return c, nil
}
