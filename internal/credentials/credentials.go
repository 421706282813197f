// Package credentials obtains S3 credentials for an environment: from its
// credentials_command (short-lived keys, run once per upload) or from the
// standard AWS chain (environment variables, ~/.aws/credentials, profile).
// A secret never reaches output, logs, journals or errors: Secret redacts
// itself wherever it is formatted or marshalled.
package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixstore"
)

// Secret is a string that never prints itself.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string                { return redacted }
func (Secret) GoString() string              { return redacted }
func (Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }
func (Secret) MarshalJSON() ([]byte, error)  { return json.Marshal(redacted) }
func (Secret) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (Secret) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (s Secret) Reveal() string              { return string(s) }

// Credentials are S3 access keys.
type Credentials struct {
	// Name is the key's name, when the issuer gives one.
	Name   string `json:"name,omitempty"`
	ID     string `json:"id"`
	Secret Secret `json:"secret_key"`
	// Token is a session token (standard chain only).
	Token Secret `json:"-"`
	// Source says where they came from, for messages.
	Source string `json:"source"`
}

// FromCommand runs argv (no shell) and reads {"name", "id", "secret_key"}
// from its stdout, at most fsutil.MaxCredentials bytes: a command that
// prints more is killed and the error says so. Errors never include what
// the command printed on stdout.
func FromCommand(ctx context.Context, argv []string) (*Credentials, error) {
	if len(argv) == 0 {
		return nil, errors.New("credentials_command is empty")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	errb := &nixstore.TailBuffer{Max: 2000}
	cmd.Stderr = errb
	out, err := nixstore.CommandOutput(cmd, "credentials_command "+argv[0], fsutil.MaxCredentials)
	var big *nixstore.OutputTooLargeError
	if errors.As(err, &big) {
		return nil, fmt.Errorf("%w (output withheld: it may hold secrets)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("credentials_command %s failed: %v\n%s", argv[0], err, strings.TrimSpace(errb.String()))
	}
	return parseCommandOutput(out, argv[0])
}

// parseCommandOutput reads the JSON a credentials_command printed; name is
// the command, for errors, which never quote out.
func parseCommandOutput(out []byte, name string) (*Credentials, error) {
	var raw struct {
		Name      string `json:"name"`
		ID        string `json:"id"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("credentials_command %s: stdout is not the JSON {\"name\", \"id\", \"secret_key\"} releng expects (output withheld: it may hold secrets)", name)
	}
	if raw.ID == "" || raw.SecretKey == "" {
		return nil, fmt.Errorf("credentials_command %s: its JSON lacks \"id\" or \"secret_key\"", name)
	}
	return &Credentials{Name: raw.Name, ID: raw.ID, Secret: Secret(raw.SecretKey), Source: "credentials_command " + name}, nil
}

// FromChain reads the standard AWS chain: AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), then the shared
// credentials file for profile (AWS_PROFILE or "default" when empty).
// It returns nil, nil when the chain has nothing (anonymous access).
func FromChain(profile string) (*Credentials, error) {
	providers := []struct {
		name string
		p    miniocreds.Provider
	}{
		{"environment (AWS_ACCESS_KEY_ID)", &miniocreds.EnvAWS{}},
		{"shared credentials file", &miniocreds.FileAWSCredentials{Profile: profile}},
	}
	for _, pr := range providers {
		v, err := pr.p.Retrieve()
		if err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
			continue
		}
		return &Credentials{ID: v.AccessKeyID, Secret: Secret(v.SecretAccessKey), Token: Secret(v.SessionToken), Source: pr.name}, nil
	}
	return nil, nil
}

// Redact replaces every occurrence of the secrets in s (for text that came
// from elsewhere, such as a server's error message).
func (c *Credentials) Redact(s string) string {
	if c == nil {
		return s
	}
	for _, sec := range []Secret{c.Secret, c.Token} {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, string(sec), redacted)
		}
	}
	return s
}
