// Package plan is the one description of what a publishing stage sends
// (SPEC §10.7): every object with its destination, key (or tag, or ref),
// size, digest and why — new, changed, already there, to delete — found by
// asking the destination what it holds. `upload --dry-run` prints plans,
// `upload` executes and journals them, `verify` checks their objects and
// `status` counts the journal against their totals; nothing else says what
// a stage publishes.
package plan

import "fmt"

// Why says what a plan does with an object.
type Why string

const (
	// New: the destination does not have it; it is sent.
	New Why = "new"
	// Changed: the destination has different bytes under the key; it is sent.
	Changed Why = "changed"
	// Present: the destination has it already; nothing is sent.
	Present Why = "present"
	// Delete: the destination has it and the stage removes it (a mirrored
	// prefix holding an object no longer published).
	Delete Why = "delete"
)

// Object kinds.
const (
	KindFile      = "file"       // a file of release/ in a releases or docs bucket
	KindCacheInfo = "cache-info" // nix-cache-info
	KindNarInfo   = "narinfo"
	KindNAR       = "nar"
	KindListing   = "listing" // HASH.ls
	KindBlob      = "blob"    // an image layer or config
	KindManifest  = "manifest"
	KindIndex     = "index"     // an image index, put to a tag
	KindRef       = "ref"       // a git branch or tag
	KindSignature = "signature" // a cosign signature of an image index, put to its sha256-HEX.sig tag
)

// Object is one thing a stage publishes.
type Object struct {
	// Dest is where it goes: a bucket URL, an image repository or a git
	// remote.
	Dest string `json:"dest"`
	// Key is the object key, the image tag or digest, or the git ref.
	Key  string `json:"key"`
	Kind string `json:"kind"`
	// Size in bytes; -1 when it is known only once made (a compressed NAR).
	Size int64 `json:"size"`
	// Digest identifies the content: sha256:HEX for files and image
	// objects, the NAR hash (sha256:nixbase32) for cache objects, the
	// commit for git refs.
	Digest string `json:"digest,omitempty"`
	Why    Why    `json:"why"`
	// Detail says more about why (e.g. what the destination holds instead).
	Detail string `json:"detail,omitempty"`
	// Source is where the bytes come from (a file of release/, a store
	// path); not part of the JSON.
	Source string `json:"-"`
}

// Sends reports whether executing the plan sends the object.
func (o Object) Sends() bool { return o.Why == New || o.Why == Changed }

// Plan is what one stage publishes.
type Plan struct {
	Stage string `json:"stage"`
	// Dest is the stage's destination(s), absolute, for the plan's header.
	Dest string `json:"dest"`
	// Skipped says why the stage does nothing ("" when it runs).
	Skipped string   `json:"skipped,omitempty"`
	Objects []Object `json:"objects"`
	// Note is a remark for the release engineer (e.g. a maintenance
	// release moves no alias).
	Note string `json:"note,omitempty"`
	// State is what the stage needs to execute the plan besides its
	// objects (e.g. the cache push's path information); not in the JSON.
	State any `json:"-"`
}

// Totals counts a plan's objects by what happens to them.
type Totals struct {
	Objects     int   `json:"objects"`
	Send        int   `json:"send"`
	SendBytes   int64 `json:"send_bytes"`
	Present     int   `json:"present"`
	PresentSize int64 `json:"present_bytes"`
	Delete      int   `json:"delete"`
	// Unknown counts objects to send whose size is known only once they
	// are made (SendBytes leaves them out).
	Unknown int `json:"unknown_size,omitempty"`
}

// Totals adds up the plan.
func (p *Plan) Totals() Totals {
	var t Totals
	for _, o := range p.Objects {
		t.Objects++
		switch {
		case o.Sends():
			t.Send++
			if o.Size < 0 {
				t.Unknown++
			} else {
				t.SendBytes += o.Size
			}
		case o.Why == Present:
			t.Present++
			t.PresentSize += max(o.Size, 0)
		case o.Why == Delete:
			t.Delete++
		}
	}
	return t
}

// Add appends an object.
func (p *Plan) Add(o Object) { p.Objects = append(p.Objects, o) }

// Sending lists the objects the plan sends.
func (p *Plan) Sending() []Object {
	var out []Object
	for _, o := range p.Objects {
		if o.Sends() {
			out = append(out, o)
		}
	}
	return out
}

// String is a one-line summary: "3 to send (12.0 MiB), 40 already there, 1 to delete".
func (t Totals) String() string {
	s := fmt.Sprintf("%d to send (%s", t.Send, Size(t.SendBytes))
	if t.Unknown > 0 {
		s += fmt.Sprintf(" + %d of a size known once made", t.Unknown)
	}
	s += fmt.Sprintf("), %d already there", t.Present)
	if t.Delete > 0 {
		s += fmt.Sprintf(", %d to delete", t.Delete)
	}
	return s
}

// Size prints a byte count for people (binary units).
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
