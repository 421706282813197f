package credentials

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestFromCommand(t *testing.T) {
	c, err := FromCommand(context.Background(), []string{"sh", "-c", `printf '{"name":"k","id":"AKID","secret_key":"s3cr3t-value"}'`})
	if err != nil || c.ID != "AKID" || c.Secret.Reveal() != "s3cr3t-value" {
		t.Fatalf("FromCommand: %+v %v", c, err)
	}
}

// A command that prints without end is stopped at the cap, and no error
// quotes what it printed on stdout.
func TestFromCommandBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		want   string
	}{
		{"endless", "yes s3cr3t-value", "printed more than 64 KiB on stdout"},
		{"zeros", "cat /dev/zero", "printed more than 64 KiB on stdout"},
		{"not JSON", "echo 'id=AKID secret=s3cr3t-value'", "stdout is not the JSON"},
		{"fails", "echo s3cr3t-value; yes error-line | head -c 10000000 >&2; exit 3", "exit status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := FromCommand(context.Background(), []string{"sh", "-c", tc.script})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error quotes stdout: %v", err)
			}
			if len(err.Error()) > 2500 {
				t.Errorf("the error holds %d bytes of stderr", len(err.Error()))
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
