package plan

import "testing"

func TestTotals(t *testing.T) {
	pl := &Plan{Objects: []Object{
		{Key: "a", Size: 10, Why: New},
		{Key: "b", Size: 20, Why: Changed},
		{Key: "c", Size: -1, Why: New},
		{Key: "d", Size: 5, Why: Present},
		{Key: "e", Size: 7, Why: Delete},
	}}
	got := pl.Totals()
	want := Totals{Objects: 5, Send: 3, SendBytes: 30, Present: 1, PresentSize: 5, Delete: 1, Unknown: 1}
	if got != want {
		t.Errorf("Totals() = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "3 to send (30 B + 1 of a size known once made), 1 already there, 1 to delete" {
		t.Errorf("String() = %q", s)
	}
	if n := len(pl.Sending()); n != 3 {
		t.Errorf("Sending() has %d objects", n)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
