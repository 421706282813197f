package nixbuild

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Job is one derivation of the release jobs.
type Job struct {
	// Attr is the attribute path below the jobs attribute, e.g. "build.x86_64-linux".
	Attr    string            `json:"attr"`
	Name    string            `json:"name"`
	System  string            `json:"system"`
	DrvPath string            `json:"drvPath"`
	Outputs map[string]string `json:"outputs"`
}

// EvalError is a problem with the jobs attribute itself (missing, not an
// attribute set, a job that is not a derivation).
type EvalError struct {
	Installable string
	Msg         string
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("build.jobs %s: %s", e.Installable, e.Msg)
}

// flattenExpr turns the jobs attribute set into a list of jobs; leaves that
// are not derivations or attribute sets become entries with an error.
const flattenExpr = `jobs:
let
  isDrv = v: builtins.isAttrs v && (v.type or null) == "derivation";
  walk = prefix: v:
    if isDrv v then [ {
      attr = prefix;
      name = v.name;
      system = v.system;
      drvPath = v.drvPath;
      outputs = builtins.listToAttrs (map (o: { name = o; value = v.${o}.outPath; }) (v.outputs or [ "out" ]));
    } ]
    else if builtins.isAttrs v then
      builtins.concatLists (map (n: walk (if prefix == "" then n else prefix + "." + n) v.${n}) (builtins.attrNames v))
    else [ { attr = prefix; error = "is a " + builtins.typeOf v + ", not a derivation or an attribute set of jobs"; } ];
in
  if isDrv jobs || !(builtins.isAttrs jobs)
  then { releng_error = "evaluates to " + (if isDrv jobs then "a single derivation" else "a " + builtins.typeOf jobs) + ", not an attribute set of jobs"; }
  else walk "" jobs`

// Evaluator says which evaluator to use: "auto", "nix-eval-jobs" or "nix".
type Evaluator string

// Evaluate evaluates installable (e.g. ".#release-jobs.all") to its jobs,
// sorted by attribute path.
func (n *Nix) Evaluate(ctx context.Context, installable string, evaluator Evaluator, workers int) ([]Job, error) {
	use := evaluator
	if use == "auto" || use == "" {
		use = "nix"
		if _, err := exec.LookPath("nix-eval-jobs"); err == nil {
			use = "nix-eval-jobs"
		}
	}
	var jobs []Job
	var err error
	if use == "nix-eval-jobs" {
		jobs, err = n.evalJobs(ctx, installable, workers)
	} else {
		jobs, err = n.evalApply(ctx, installable)
	}
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, &EvalError{Installable: installable, Msg: "has no jobs (an empty attribute set)"}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Attr < jobs[j].Attr })
	return jobs, nil
}

type rawJob struct {
	Job
	AttrPath []string `json:"attrPath"`
	Error    string   `json:"error"`
}

func (n *Nix) evalApply(ctx context.Context, installable string) ([]Job, error) {
	args := append([]string{"eval"}, features...)
	args = append(args, "--json", installable, "--apply", flattenExpr)
	out, err := n.run(ctx, nil, "nix", args...)
	if err != nil {
		return nil, explainEvalError(installable, err)
	}
	var wrapped struct {
		RelengError string `json:"releng_error"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(out), []byte("{")) {
		if json.Unmarshal(out, &wrapped) == nil && wrapped.RelengError != "" {
			return nil, &EvalError{Installable: installable, Msg: wrapped.RelengError}
		}
	}
	var raws []rawJob
	if err := json.Unmarshal(out, &raws); err != nil {
		return nil, fmt.Errorf("nix eval %s printed JSON releng does not understand: %v", installable, err)
	}
	return collect(installable, raws)
}

func (n *Nix) evalJobs(ctx context.Context, installable string, workers int) ([]Job, error) {
	if workers < 1 {
		workers = 1
	}
	args := []string{"--flake", installable, "--workers", fmt.Sprint(workers)}
	out, err := n.run(ctx, nil, "nix-eval-jobs", args...)
	if err != nil {
		return nil, explainEvalError(installable, err)
	}
	var raws []rawJob
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r rawJob
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("nix-eval-jobs printed a line releng does not understand: %v: %.200s", err, line)
		}
		if len(r.AttrPath) > 0 {
			r.Attr = strings.Join(r.AttrPath, ".")
		}
		raws = append(raws, r)
	}
	return collect(installable, raws)
}

func collect(installable string, raws []rawJob) ([]Job, error) {
	var jobs []Job
	var problems []string
	for _, r := range raws {
		switch {
		case r.Error != "":
			problems = append(problems, fmt.Sprintf("job %s %s", r.Attr, firstLines(r.Error, 5)))
		case r.DrvPath == "":
			problems = append(problems, fmt.Sprintf("job %s has no drvPath", r.Attr))
		case r.Outputs["out"] == "":
			problems = append(problems, fmt.Sprintf("job %s (%s) has no \"out\" output (outputs: %s); every release job needs one", r.Attr, r.DrvPath, strings.Join(keys(r.Outputs), ", ")))
		default:
			jobs = append(jobs, r.Job)
		}
	}
	if len(problems) > 0 {
		return nil, &EvalError{Installable: installable, Msg: strings.Join(problems, "; ")}
	}
	return jobs, nil
}

func explainEvalError(installable string, err error) error {
	var ce *CommandError
	if errors.As(err, &ce) {
		if strings.Contains(ce.Tail, "does not provide attribute") || strings.Contains(ce.Tail, "attribute '") && strings.Contains(ce.Tail, "missing") {
			return &EvalError{Installable: installable, Msg: "the flake has no such attribute (set [build] jobs in releng.toml to the attribute that holds the release jobs)\n" + ce.Tail}
		}
		return &EvalError{Installable: installable, Msg: "evaluation failed\n" + ce.Tail}
	}
	return err
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
