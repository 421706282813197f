package image

import (
	"reflect"
	"sort"
	"testing"

	"github.com/releng-project/releng/internal/image/layering"
)

// nixpkgsLayers returns the layers nixpkgs' buildLayeredImage would make
// with the same budget: the budget-1 most popular paths one per layer, and
// every other path in one last layer. releng does not use it; the tests
// compare releng's layering against it.
func nixpkgsLayers(g *layering.Graph, budget int) [][]string {
	ranked := layering.Rank(g.Paths(), g.Popularity())
	if budget < 1 {
		budget = 1
	}
	var out [][]string
	for i, p := range ranked {
		if i < budget-1 || len(ranked) <= budget {
			out = append(out, []string{p})
			continue
		}
		rest := append([]string(nil), ranked[i:]...)
		sort.Strings(rest)
		out = append(out, rest)
		break
	}
	return out
}

func TestNixpkgsStyle(t *testing.T) {
	sp := func(hash, name string) string {
		return "/nix/store/" + hash + "0000000000000000000000000000000-" + name
	}
	foo, bar, baz, tux := sp("a", "foo"), sp("b", "bar"), sp("c", "baz"), sp("d", "tux")
	g, err := layering.NewGraph([]layering.Node{
		{Path: foo, References: []string{bar, baz}},
		{Path: bar, References: []string{baz}},
		{Path: baz, References: []string{tux}},
		{Path: tux},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := nixpkgsLayers(g, 3)
	want := [][]string{{tux}, {baz}, {foo, bar}} // the last layer sorted by path
	if !reflect.DeepEqual(got, want) {
		t.Errorf("nixpkgsLayers = %v, want %v", got, want)
	}
}
