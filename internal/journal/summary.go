package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"sort"
	"time"

	"github.com/releng-project/releng/internal/plan"
)

// StepProgress is how far a step got against its recorded plan.
type StepProgress struct {
	Step string `json:"step"`
	// Plan is the totals of the step's last recorded plan (nil when none
	// was recorded, as by releng before plans).
	Plan *plan.Totals `json:"plan,omitempty"`
	// Sent counts the objects (and bytes) sent or deleted since that plan.
	Sent      int   `json:"sent"`
	SentBytes int64 `json:"sent_bytes"`
	Done      bool  `json:"done"`
}

// Release is what a journal records for one release (for `releng status`).
type Release struct {
	// ID is the release as the journal names it: NAME VERSION COMMIT.
	ID string
	// First and Last are the times of its first and last entries.
	First, Last time.Time
	// Steps are the steps recorded as done, sorted.
	Steps []string
	// Objects is the number of objects recorded as published.
	Objects int
	// Progress is each step's progress against its last plan, in the order
	// the steps first appear.
	Progress []StepProgress
}

// Summarize reads a journal without opening it for writing and returns what
// it records per release, in the order the releases first appear. A missing
// journal records nothing. Lines are read as Open reads them: whole lines
// only (a last line without a newline was cut short by a crash); a line that
// does not parse is left out.
func Summarize(path string) ([]Release, error) {
	data, err := read(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	// Maps are made on first use: a journal of many one-line releases
	// costs little more than its size.
	type state struct {
		rel     Release
		steps   map[string]bool
		objects map[string]bool
		byStep  map[string]*StepProgress
		order   []string
	}
	var (
		states []*state
		byID   = map[string]*state{}
	)
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1]
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		var e Entry
		if json.Unmarshal(l, &e) != nil {
			continue
		}
		s := byID[e.Release]
		if s == nil {
			s = &state{rel: Release{ID: e.Release, First: e.Time}}
			byID[e.Release] = s
			states = append(states, s)
		}
		if e.Time.After(s.rel.Last) {
			s.rel.Last = e.Time
		}
		switch {
		case e.Kind == "step" && !s.steps[e.Step]:
			if s.steps == nil {
				s.steps = map[string]bool{}
			}
			s.steps[e.Step] = true
			s.rel.Steps = append(s.rel.Steps, e.Step)
		case e.Kind == "object":
			if s.objects == nil {
				s.objects = map[string]bool{}
			}
			s.objects[e.Key] = true
		}
		if e.Step == "" {
			continue
		}
		sp := s.byStep[e.Step]
		if sp == nil {
			if s.byStep == nil {
				s.byStep = map[string]*StepProgress{}
			}
			sp = &StepProgress{Step: e.Step}
			s.byStep[e.Step] = sp
			s.order = append(s.order, e.Step)
		}
		switch e.Kind {
		case "plan":
			*sp = StepProgress{Step: e.Step, Plan: e.Plan}
		case "object", "deleted":
			if e.Note == "" {
				sp.Sent++
				sp.SentBytes += e.Size
			}
		case "step":
			sp.Done = true
		}
	}
	out := make([]Release, 0, len(states))
	for _, s := range states {
		sort.Strings(s.rel.Steps)
		s.rel.Objects = len(s.objects)
		for _, st := range s.order {
			s.rel.Progress = append(s.rel.Progress, *s.byStep[st])
		}
		out = append(out, s.rel)
	}
	return out, nil
}
