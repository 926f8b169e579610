package chaos

import (
	"fmt"
	"strings"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/benchreport"
)

// Totals sums a campaign's results.
type Totals struct {
	Ran, Skipped, Failed int
	Lost, Duplicated     int64
}

// Sum adds up results.
func Sum(results []*Result) Totals {
	var t Totals
	for _, r := range results {
		switch {
		case r.Skipped != "":
			t.Skipped++
		case !r.OK():
			t.Ran++
			t.Failed++
		default:
			t.Ran++
		}
		t.Lost += r.Lost
		t.Duplicated += r.Duplicated
	}
	return t
}

func exits(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		if c == -1 {
			s[i] = "kill"
		} else {
			s[i] = fmt.Sprint(c)
		}
	}
	return strings.Join(s, " → ")
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

// Report renders results as the Markdown section RELIABILITY.md records.
func Report(cfg Config, results []*Result, took time.Duration) string {
	t := Sum(results)
	var b strings.Builder
	fmt.Fprintf(&b, "### Last campaign: %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s; load before the run %s. Seed %d (repeat with `make chaos CHAOS_FLAGS='-seed %d'`); "+
		"scale: %d× documents base, %d users, %d files per case; `--source-timeout %s` in stall cases. Took %s.\n\n",
		benchreport.Machine(), benchreport.LoadAverage(), cfg.Seed, cfg.Seed, cfg.Scale.DocumentsScale, cfg.Scale.Users, cfg.Scale.Files,
		cfg.SourceTimeout, took.Round(time.Second))
	verdict := "PASS"
	if t.Failed > 0 || t.Lost > 0 || t.Duplicated > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "**%s**: %d cases run, %d failed, %d not applicable; records lost **%d**, duplicated **%d**.\n\n", verdict, t.Ran, t.Failed, t.Skipped, t.Lost, t.Duplicated)
	b.WriteString("| case | seeded | faults injected | exits (fault runs → re-runs) | verify | lost | duplicated | stall noticed after | result |\n")
	b.WriteString("|---|---:|---|---|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | | not run: %s | | | | | | n/a |\n", r.Case, cell(r.Skipped))
			continue
		}
		stall := ""
		if r.Case.Fault == SourceStall {
			stall = "not noticed"
			if r.StallDetect > 0 {
				stall = fmt.Sprintf("%.1f s", r.StallDetect.Seconds())
			}
		}
		result := "ok"
		if !r.OK() {
			result = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d | %d | %s | %s |\n", r.Case, r.Seeded, cell(strings.Join(r.Injected, "; ")),
			exits(r.Exits), r.Verify, r.Lost, r.Duplicated, stall, result)
	}
	var details []string
	for _, r := range results {
		for _, p := range r.Problems {
			details = append(details, fmt.Sprintf("- %s — **problem**: %s", r.Case, p))
		}
		for _, n := range r.Notes {
			details = append(details, fmt.Sprintf("- %s — %s", r.Case, n))
		}
	}
	if len(details) > 0 {
		b.WriteString("\nProblems and notes:\n\n")
		b.WriteString(strings.Join(details, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// Record writes the report into the generated section of path
// (RELIABILITY.md), between its markers.
func Record(path, section string) error {
	return benchreport.Record(path, "chaos", section)
}
