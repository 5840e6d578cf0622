package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/atrax-mcp/atrax/internal/syncbuf"
)

// ConformanceTimeout bounds one conformance run when ctx has no deadline.
const ConformanceTimeout = 10 * time.Minute

// Check statuses, as the conformance suite writes them in checks.json. Only
// FAILURE fails a scenario; the suite counts SUCCESS and FAILURE and reports
// WARNING, SKIPPED and INFO without failing.
const (
	CheckSuccess = "SUCCESS"
	CheckFailure = "FAILURE"
	CheckWarning = "WARNING"
	CheckSkipped = "SKIPPED"
	CheckInfo    = "INFO"
)

// ConformanceCheck is one check of a scenario, as in the suite's checks.json.
type ConformanceCheck struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Status       string          `json:"status"` // CheckSuccess, CheckFailure, ...
	ErrorMessage string          `json:"errorMessage,omitempty"`
	Details      json.RawMessage `json:"details,omitempty"`
}

// ConformanceScenario is one scenario of a run.
type ConformanceScenario struct {
	Name string
	// Scored is true for the scenarios the requirement set requires (its
	// `server` list): only they decide conformance. The others run for
	// visibility only.
	Scored bool
	// NotScoredReason says why an unscored scenario is not scored:
	// "extension", "added-after-release" or "pending" (the suite's words).
	NotScoredReason string
	// Note is the requirement set's note on an unscored scenario, if any.
	Note string
	// Measured is false when the suite wrote no checks.json for the scenario
	// (it could not run it); a scored scenario that was not measured fails.
	Measured bool
	Checks   []ConformanceCheck
	// Dir holds the scenario's checks.json.
	Dir string
}

// Failed reports whether the scenario was not measured or has a FAILURE check.
func (s *ConformanceScenario) Failed() bool {
	return !s.Measured || len(s.Failures()) > 0
}

// Failures returns the scenario's FAILURE checks.
func (s *ConformanceScenario) Failures() []ConformanceCheck {
	var f []ConformanceCheck
	for _, c := range s.Checks {
		if c.Status == CheckFailure {
			f = append(f, c)
		}
	}
	return f
}

// ConformanceResult is the outcome of one run of the suite against a server.
type ConformanceResult struct {
	URL          string
	Requirements string // the spec revision, e.g. "2025-11-25"
	// Dir is this run's results directory: one server-SCENARIO-TIMESTAMP
	// folder with checks.json per scenario, and output.txt.
	Dir string
	// Output is what the suite printed (stdout and stderr).
	Output string
	// ExitCode is the suite's: 0 when no scored scenario failed.
	ExitCode int
	Duration time.Duration
	// Scenarios lists the scored scenarios in the requirement set's order,
	// then the unscored ones.
	Scenarios []ConformanceScenario
}

// ScoredPassed reports whether every scored scenario was measured and passed
// every check, and the suite agreed (exit code 0).
func (r *ConformanceResult) ScoredPassed() bool {
	return len(r.ScoredFailures()) == 0
}

// ScoredFailures returns one line per failing check of a scored scenario
// ("scenario: check-id: message"), per scored scenario without results, and a
// line for a non-zero exit code that no failing check explains. It is empty
// when the run conforms.
func (r *ConformanceResult) ScoredFailures() []string {
	var lines []string
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		if !s.Scored {
			continue
		}
		if !s.Measured {
			lines = append(lines, s.Name+": not measured (the suite wrote no checks.json for it)")
			continue
		}
		for _, c := range s.Failures() {
			lines = append(lines, fmt.Sprintf("%s: %s: %s", s.Name, c.ID, checkMessage(c)))
		}
	}
	if r.ExitCode != 0 && len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("the suite exited with code %d (see %s)", r.ExitCode, filepath.Join(r.Dir, "output.txt")))
	}
	return lines
}

// Scenario returns the named scenario, or nil.
func (r *ConformanceResult) Scenario(name string) *ConformanceScenario {
	for i := range r.Scenarios {
		if r.Scenarios[i].Name == name {
			return &r.Scenarios[i]
		}
	}
	return nil
}

// Summary is a report for a test log: counts, every failing scored check,
// and the unscored scenarios that failed.
func (r *ConformanceResult) Summary() string {
	var b strings.Builder
	var scored, scoredOK, checks, checksOK, unscored, unscoredFailed int
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		if !s.Scored {
			unscored++
			if s.Failed() {
				unscoredFailed++
			}
			continue
		}
		scored++
		if !s.Failed() {
			scoredOK++
		}
		for _, c := range s.Checks {
			if c.Status == CheckSuccess || c.Status == CheckFailure {
				checks++
				if c.Status == CheckSuccess {
					checksOK++
				}
			}
		}
	}
	fmt.Fprintf(&b, "conformance --requirements %s against %s (%s, exit code %d): scored: %d/%d scenarios passed, %d/%d checks; not scored: %d run, %d failing; results in %s\n",
		r.Requirements, r.URL, r.Duration.Round(time.Millisecond), r.ExitCode, scoredOK, scored, checksOK, checks, unscored, unscoredFailed, r.Dir)
	if f := r.ScoredFailures(); len(f) > 0 {
		fmt.Fprintf(&b, "failing scored checks (%d):\n", len(f))
		for _, l := range f {
			fmt.Fprintf(&b, "  ✗ %s\n", l)
		}
	}
	for i := range r.Scenarios {
		if s := &r.Scenarios[i]; !s.Scored && s.Failed() {
			fmt.Fprintf(&b, "  (not scored, %s) ✗ %s: %d failing checks\n", s.NotScoredReason, s.Name, len(s.Failures()))
		}
	}
	return b.String()
}

func checkMessage(c ConformanceCheck) string {
	if c.ErrorMessage != "" {
		return c.ErrorMessage
	}
	return c.Description
}

// Conformance runs the official MCP conformance suite
// (@modelcontextprotocol/conformance) against the MCP server at url (the
// suite speaks streamable HTTP only), for the scenarios the spec revision
// requirements requires ("2025-11-25", run on the stateful wire, or
// "2026-07-28", stateless):
//
//	node node_modules/@modelcontextprotocol/conformance/dist/index.js server \
//	    --url URL --requirements REVISION -o DIR
//
// It writes the results to a new directory under outDir (created if needed;
// a temporary directory when empty) and reads them back with the requirement
// set (requirements/REVISION.yaml in the package) to tell scored scenarios
// from the extension, added-after-release and pending ones that only run for
// visibility. Each scenario has its own 30 s timeout in the suite; the whole
// run is bounded by ctx, or [ConformanceTimeout] when ctx has no deadline.
//
// A suite that ran but found failures is not an error: check
// [ConformanceResult.ScoredPassed]. The error is for a suite that could not
// run or be read; the result, when not nil, still holds its output.
func (p *Peers) Conformance(ctx context.Context, url, requirements, outDir string) (*ConformanceResult, error) {
	set, err := p.requirementSet(ctx, requirements)
	if err != nil {
		return nil, err
	}
	if outDir == "" {
		outDir = os.TempDir()
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	runDir, err := os.MkdirTemp(outDir, "conformance-"+requirements+"-")
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	if runDir, err = filepath.Abs(runDir); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ConformanceTimeout)
		defer cancel()
	}

	res := &ConformanceResult{URL: url, Requirements: requirements, Dir: runDir}
	cmd := p.Command(ctx, "conformance", "server", "--url", url, "--requirements", requirements, "-o", runDir)
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	runErr := cmd.Run()
	res.Duration = time.Since(start)
	res.Output = out.String()
	_ = os.WriteFile(filepath.Join(runDir, "output.txt"), []byte(res.Output), 0o644)
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exitErr) && exitErr.Exited() && ctx.Err() == nil:
		res.ExitCode = exitErr.ExitCode()
	default:
		res.ExitCode = -1
		return res, fmt.Errorf("peers: conformance against %s: %w (after %s)\n%s", url, errors.Join(runErr, ctx.Err()), res.Duration.Round(time.Millisecond), tail(res.Output, 4000))
	}

	dirs, err := scenarioDirs(runDir)
	if err != nil {
		return res, err
	}
	if len(dirs) == 0 {
		return res, fmt.Errorf("peers: conformance against %s (exit code %d) wrote no results\n%s", url, res.ExitCode, tail(res.Output, 4000))
	}
	add := func(name string, scored bool, reason, note string) error {
		s := ConformanceScenario{Name: name, Scored: scored, NotScoredReason: reason, Note: note}
		if d, ok := dirs[name]; ok {
			delete(dirs, name)
			data, err := os.ReadFile(filepath.Join(d, "checks.json"))
			if err != nil {
				return fmt.Errorf("peers: conformance results: %w", err)
			}
			if err := json.Unmarshal(data, &s.Checks); err != nil {
				return fmt.Errorf("peers: conformance results %s: %w", d, err)
			}
			s.Measured, s.Dir = true, d
		}
		res.Scenarios = append(res.Scenarios, s)
		return nil
	}
	for _, name := range set.Server {
		if err := add(name, true, "", ""); err != nil {
			return res, err
		}
	}
	for _, ns := range set.NotScored {
		if ns.Leg == "server" {
			if err := add(ns.Scenario, false, ns.Reason, ns.Note); err != nil {
				return res, err
			}
		}
	}
	extra := make([]string, 0, len(dirs))
	for name := range dirs {
		extra = append(extra, name)
	}
	sort.Strings(extra)
	for _, name := range extra {
		if err := add(name, false, "not in the requirement set", ""); err != nil {
			return res, err
		}
	}
	return res, nil
}

// requirementSet is a conformance requirements/REVISION.yaml.
type requirementSet struct {
	Server    []string `json:"server"`
	NotScored []struct {
		Scenario string `json:"scenario"`
		Leg      string `json:"leg"`
		Reason   string `json:"reason"`
		Note     string `json:"note"`
	} `json:"not_scored"`
}

// requirementSet reads the suite's requirement set for revision, converting
// its YAML with the yaml package the suite itself depends on.
func (p *Peers) requirementSet(ctx context.Context, revision string) (*requirementSet, error) {
	if !regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`).MatchString(revision) {
		return nil, fmt.Errorf("peers: requirements %q: want a spec revision such as 2025-11-25", revision)
	}
	pkg := filepath.Join(p.Dir, "node_modules", "@modelcontextprotocol", "conformance")
	file := filepath.Join(pkg, "requirements", revision+".yaml")
	if !fileExists(file) {
		return nil, fmt.Errorf("peers: the conformance suite has no requirement set %s", file)
	}
	const js = `const r = require("module").createRequire(process.argv[1]);
const yaml = r("yaml");
process.stdout.write(JSON.stringify(yaml.parse(require("fs").readFileSync(process.argv[2], "utf8"))));`
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Node, "-e", js, filepath.Join(pkg, "package.json"), file)
	cmd.Dir = p.Dir
	setProcessGroup(cmd)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("peers: read %s: %w\n%s", file, err, stderr.String())
	}
	var set requirementSet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("peers: read %s: %w", file, err)
	}
	if len(set.Server) == 0 {
		return nil, fmt.Errorf("peers: %s lists no server scenarios", file)
	}
	return &set, nil
}

// scenarioDir matches the suite's result folders, server-SCENARIO-TIMESTAMP
// with the ISO time's ':' and '.' made '-'.
var scenarioDir = regexp.MustCompile(`^server-(.+)-([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{3}Z)$`)

// scenarioDirs maps each scenario to its latest result folder in dir.
func scenarioDirs(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("peers: conformance results: %w", err)
	}
	dirs := map[string]string{}
	stamps := map[string]string{}
	for _, e := range entries {
		m := scenarioDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		if !fileExists(filepath.Join(dir, e.Name(), "checks.json")) {
			continue
		}
		if m[2] >= stamps[m[1]] {
			dirs[m[1]], stamps[m[1]] = filepath.Join(dir, e.Name()), m[2]
		}
	}
	return dirs, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
