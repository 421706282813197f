package textutil

import (
	"strings"
	"testing"
)

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"compresion", "compression", 1},
		{"kitten", "sitting", 3}, {"synopsys", "synopsis", 1}, {strings.Repeat("x", 65), "x", 64},
	} {
		if got := EditDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	if c, d := Closest("layot", []string{"layout", "link_text"}); c != "layout" || d != 1 {
		t.Errorf("Closest = %q %d", c, d)
	}
}
