package status

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/project"
)

// Environment is what is known locally about one environment: its key
// files, its lock and what its journal records.
type Environment struct {
	Name    string `json:"name"`
	Colour  string `json:"colour,omitempty"`
	BuiltIn bool   `json:"built_in"`
	Default bool   `json:"default"`
	// SigningKey is signing_key as configured; SigningKeyPresent says the
	// file exists (Keys says more).
	SigningKey        string    `json:"signing_key,omitempty"`
	SigningKeyPresent bool      `json:"signing_key_present"`
	Keys              []KeyFile `json:"keys"`
	Lock              Lock      `json:"lock"`
	// Run is "running" (the lock is held), "interrupted" (the newest run
	// recorded stopped before finishing: interrupted, killed or failed) or
	// "idle".
	Run string `json:"run"`
	// Journal is the journal file; JournalNote says why it could not be
	// read (status reports it and goes on).
	Journal     string `json:"journal"`
	JournalNote string `json:"journal_note,omitempty"`
	// Releases is what the journal records per release, newest first.
	Releases []Published `json:"releases"`
	// PublishedSteps, PublishedObjects and Progress are those of the
	// release build.json describes.
	PublishedSteps   []string               `json:"published_steps"`
	PublishedObjects int                    `json:"published_objects"`
	Progress         []journal.StepProgress `json:"progress,omitempty"`
}

// KeyFile is the state of one secret key file an environment names.
type KeyFile struct {
	// Role is "signing_key", "cache secret-key" (the cache URI's
	// secret-key= or secret-keys=) or "release_key".
	Role string `json:"role"`
	Path string `json:"path"`
	// State is "ok", "missing", "unsafe" (group or others may access it:
	// commands that sign refuse it), "not a regular file" or "unreadable".
	State string `json:"state"`
	Mode  string `json:"mode,omitempty"`
	// Note: for the built-in local environment a missing signing key is
	// generated on first use.
	Note string `json:"note,omitempty"`
}

// Lock is the environment's lock (release/state/ENV.lock) as it stands.
type Lock struct {
	Held bool `json:"held"`
	// PID, Host, Since and Command name the holder, or when not held, the
	// last holder that ended without releasing it.
	PID     int        `json:"pid,omitempty"`
	Host    string     `json:"host,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	Command string     `json:"command,omitempty"`
	Note    string     `json:"note,omitempty"`
}

// Published is what the journal records for one release.
type Published struct {
	// Release is NAME VERSION COMMIT; Built says it is the release
	// build.json describes.
	// (or "yank NAME VERSION" for what `releng yank` did, Yank set).
	Release string    `json:"release"`
	Version string    `json:"version"`
	Commit  string    `json:"commit"`
	Yank    bool      `json:"yank,omitempty"`
	Built   bool      `json:"built"`
	Steps   []string  `json:"steps_done"`
	Objects int       `json:"objects"`
	First   time.Time `json:"first_time"`
	Last    time.Time `json:"last_time"`
	// Unfinished are the steps planned but not done since their last plan.
	Unfinished []string               `json:"unfinished_steps"`
	Progress   []journal.StepProgress `json:"progress,omitempty"`
}

func collectEnvironment(p *project.Project, e *config.Environment, built string) Environment {
	se := Environment{Name: e.Name, Colour: e.Colour, BuiltIn: e.BuiltIn, Default: e.Name == p.Config.DefaultEnvironment,
		SigningKey: e.SigningKey, Keys: keyFiles(p, e), Run: "idle", Releases: []Published{}, PublishedSteps: []string{}}
	for _, k := range se.Keys {
		if k.Role == "signing_key" {
			se.SigningKeyPresent = k.State != "missing"
		}
	}
	state := p.StateDir()
	if ls, err := journal.Peek(filepath.Join(state, e.Name+".lock")); err != nil {
		se.Lock.Note = err.Error()
	} else {
		se.Lock = Lock{Held: ls.Held, PID: ls.Info.PID, Host: ls.Info.Host, Command: ls.Info.Command}
		if !ls.Info.Since.IsZero() {
			since := ls.Info.Since
			se.Lock.Since = &since
		}
	}
	path := filepath.Join(state, e.Name+".journal")
	se.Journal = path
	if rel, err := filepath.Rel(p.Root, path); err == nil && filepath.IsLocal(rel) {
		se.Journal = rel
	}
	rels, err := journal.Summarize(path)
	if err != nil {
		se.JournalNote = err.Error()
	}
	for _, r := range rels {
		pub := Published{Release: r.ID, Built: r.ID == built, Steps: r.Steps, Objects: r.Objects, First: r.First, Last: r.Last,
			Unfinished: []string{}, Progress: r.Progress}
		if pub.Steps == nil {
			pub.Steps = []string{}
		}
		switch f := strings.Fields(r.ID); {
		case len(f) == 3 && f[0] == "yank":
			pub.Version, pub.Yank = f[2], true
		case len(f) == 3:
			pub.Version, pub.Commit = f[1], f[2]
		}
		for _, sp := range r.Progress {
			if sp.Plan != nil && !sp.Done {
				pub.Unfinished = append(pub.Unfinished, sp.Step)
			}
		}
		if pub.Built {
			se.PublishedSteps, se.PublishedObjects, se.Progress = pub.Steps, pub.Objects, pub.Progress
		}
		se.Releases = append(se.Releases, pub)
	}
	sort.SliceStable(se.Releases, func(i, j int) bool { return se.Releases[i].Last.After(se.Releases[j].Last) })
	switch {
	case se.Lock.Held:
		se.Run = "running"
	case len(se.Releases) > 0 && len(se.Releases[0].Unfinished) > 0:
		se.Run = "interrupted"
	}
	return se
}

// keyFiles lists the secret key files e names, with their state: looked at,
// never read (status needs no key material).
func keyFiles(p *project.Project, e *config.Environment) []KeyFile {
	keys := []KeyFile{}
	if e.SigningKey != "" {
		k := keyFile("signing_key", e.SigningKey, p.Config.Abs(e.SigningKey))
		if e.BuiltIn && k.State == "missing" {
			k.Note = "generated on first upload"
		}
		keys = append(keys, k)
	}
	if e.ReleaseKey != "" {
		keys = append(keys, keyFile("release_key", e.ReleaseKey, p.Config.Abs(e.ReleaseKey)))
	}
	// The cache URI's secret-key files, parsed by the one store URI
	// parser (a bare directory is made a file:// URI for it); a path is
	// used as upload uses it.
	if raw := e.Cache; raw != "" {
		if !strings.Contains(raw, "://") {
			_, q, _ := strings.Cut(raw, "?")
			raw = "file:///cache?" + q
		}
		if u, err := binarycache.ParseStoreURI(raw); err == nil {
			for _, f := range u.SecretKeyFiles {
				keys = append(keys, keyFile("cache secret-key", f, f))
			}
		}
	}
	return keys
}

// keyFile says what is at path (shown as shown): a secret key file must be a
// regular file that neither group nor others may access (SPEC §3.5).
func keyFile(role, shown, path string) KeyFile {
	k := KeyFile{Role: role, Path: shown}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k.State = "missing"
	case err != nil:
		k.State, k.Note = "unreadable", err.Error()
	case !st.Mode().IsRegular():
		k.State = "not a regular file"
	case st.Mode().Perm()&0o077 != 0:
		k.State, k.Mode = "unsafe", fmt.Sprintf("%04o", st.Mode().Perm())
		k.Note = fmt.Sprintf("commands that sign refuse it; run `chmod 600 %s`", shown)
	default:
		k.State, k.Mode = "ok", fmt.Sprintf("%04o", st.Mode().Perm())
	}
	return k
}
