package s3

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// URLParams are the query parameters ParseURL accepts (named as in Nix
// store URIs).
var URLParams = []string{"region", "endpoint", "scheme", "addressing-style"}

// ParseURL parses s3://bucket[/prefix][?region=R&endpoint=E&scheme=http|https&addressing-style=auto|path|virtual]
// into a Config (without credentials). Unknown parameters are errors, as
// are credentials in the URL.
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
