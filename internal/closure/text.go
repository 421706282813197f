package closure

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/releng-project/releng/internal/plan"
)

// WriteText writes the report as tables for people.
func (r *Report) WriteText(w io.Writer) error {
	roots := "roots"
	if len(r.Roots) == 1 {
		roots = "root"
	}
	fmt.Fprintf(w, "closure of %d %s: %d paths, %s (%d bytes)\n\n", len(r.Roots), roots, r.Paths, size(r.ClosureSize), r.ClosureSize)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOT\tPATHS\tCLOSURE SIZE")
	for _, root := range r.Roots {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", root.Path, root.Paths, size(root.ClosureSize))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nlargest paths (%d of %d):\n", len(r.Largest), r.Paths)
	fmt.Fprintln(tw, "SIZE\tPATH")
	for _, p := range r.Largest {
		fmt.Fprintf(tw, "%s\t%s\n", size(p.NarSize), p.Path)
	}
	tw.Flush()
	fmt.Fprintf(w, "\npackages (%d):\n", len(r.Packages))
	fmt.Fprintln(tw, "PACKAGE\tPATHS\tSIZE\tVERSIONS")
	for _, p := range r.Packages {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Name, p.Paths, size(p.NarSize), versions(p.Versions))
	}
	return tw.Flush()
}

// WriteText writes the diff as a table for people.
func (d *Diff) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "old:\t%s\t%d paths, %s\n", d.Old.Path, d.Old.Paths, size(d.Old.ClosureSize))
	fmt.Fprintf(tw, "new:\t%s\t%d paths, %s\n", d.New.Path, d.New.Paths, size(d.New.ClosureSize))
	tw.Flush()
	if len(d.Changes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "PACKAGE\tCHANGE\tVERSIONS\tSIZE")
		for _, c := range d.Changes {
			v := versions(c.OldVersions)
			if c.Kind != "size" {
				v += " → " + versions(c.NewVersions)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Package, c.Kind, v, delta(c.Delta))
		}
		tw.Flush()
	}
	unchanged := "packages"
	if d.Unchanged == 1 {
		unchanged = "package"
	}
	_, err := fmt.Fprintf(w, "\ntotal: %d → %d paths, %s → %s (%s, %+.1f%%); %d %s unchanged\n",
		d.Old.Paths, d.New.Paths, size(d.Old.ClosureSize), size(d.New.ClosureSize), delta(d.Delta),
		100*float64(d.Delta)/float64(max(d.Old.ClosureSize, 1)), d.Unchanged, unchanged)
	return err
}

func size(n uint64) string { return plan.Size(int64(n)) }

// delta formats a size difference with its sign.
func delta(n int64) string {
	switch {
	case n > 0:
		return "+" + plan.Size(n)
	case n < 0:
		return "-" + plan.Size(-n)
	}
	return "0 B"
}

// versions lists versions as `nix store diff-closures` does ("ε" is the
// empty version, "∅" no version at all), more than three as the oldest
// and newest and their count.
func versions(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = cmp.Or(v, "ε")
	}
	switch {
	case len(vs) == 0:
		return "∅"
	case len(vs) > 3:
		return fmt.Sprintf("%s … %s (%d versions)", out[0], out[len(out)-1], len(out))
	}
	return strings.Join(out, ", ")
}
