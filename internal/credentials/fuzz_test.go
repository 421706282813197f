package credentials

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

// placeholder marks, in a fuzz input, where a fresh random secret goes.
const placeholder = "@SECRET@"

// FuzzCommandOutput feeds arbitrary stdout to the parser of a
// credentials_command's JSON. Every occurrence of @SECRET@ in the input is
// first replaced by a random secret: it must never appear in an error, nor
// in the parsed credentials however they are printed, logged or
// marshalled (unless the input also put it in the key's id or name, which
// are not secret). An error never quotes the output at all.
func FuzzCommandOutput(f *testing.F) {
	for _, s := range []string{
		`{"name":"k","id":"AKID","secret_key":"@SECRET@"}`,
		`{"id":"AKIA0123456789","secret_key":"@SECRET@","expires":"2026-12-04T12:00:00Z"}` + "\n",
		`{"id":"AKID","secret_key":@SECRET@}`,
		`{"id":"","secret_key":"@SECRET@"}`,
		`{"id":"AKID","secret_key":"@SECRET@"`,
		`["@SECRET@"]`,
		`{"id":1,"secret_key":"@SECRET@"}`,
		`id=AKID secret=@SECRET@`,
		`{"id":"AKID","secret_key":"\u0041@SECRET@\n"} trailing @SECRET@`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		raw := make([]byte, 12)
		rand.Read(raw)
		secret := "s3cr3t" + hex.EncodeToString(raw)
		out := bytes.ReplaceAll(data, []byte(placeholder), []byte(secret))
		var c *Credentials
		var err error
		testenv.CheckAllocBytes(t, "parseCommandOutput", 16*uint64(len(out))+64<<10, func() {
			c, err = parseCommandOutput(out, "get-keys")
		})
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, secret) {
				t.Fatalf("the error reveals the secret: %v", err)
			}
			if len(data) >= 8 && strings.Contains(msg, string(data)) {
				t.Fatalf("the error quotes the output: %v", err)
			}
			if !strings.Contains(msg, "get-keys") {
				t.Fatalf("the error does not name the command: %v", err)
			}
			return
		}
		if c.ID == "" || c.Secret == "" {
			t.Fatalf("accepted credentials without id or secret: %q", c.ID)
		}
		if strings.Contains(c.ID, secret) || strings.Contains(c.Name, secret) {
			return // the input made the secret public itself
		}
		var shown bytes.Buffer
		fmt.Fprintf(&shown, "%v %+v %#v %s %v %+v %#v %q", c, c, c, c, *c, *c, *c, c.Secret)
		j, _ := json.Marshal(c)
		shown.Write(j)
		slog.New(slog.NewJSONHandler(&shown, nil)).Info("x", "creds", c, "secret", c.Secret)
		slog.New(slog.NewTextHandler(&shown, nil)).Info("x", "creds", *c)
		shown.WriteString(c.Redact("server said: " + c.Secret.Reveal()))
		if strings.Contains(shown.String(), secret) {
			t.Fatalf("the secret shows: %s", shown.String())
		}
	})
}
