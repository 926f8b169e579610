package diff

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Document is what plan and verify print: one comparison per kind of
// record, plus, for plan, the DDL migrate would run and the estimated cost.
// Its JSON form is a stable interface (docs/reports.md): fields are only
// ever added.
type Document struct {
	// Command is "plan" or "verify".
	Command string `json:"command"`
	// Version of this JSON schema.
	Version   int       `json:"version"`
	Generated time.Time `json:"generated_at"`
	// Identical is true when no table of any kind differs.
	Identical bool         `json:"identical"`
	Kinds     []KindReport `json:"kinds"`
}

// KindReport is the comparison of one kind of record.
type KindReport struct {
	Kind string `json:"kind"`
	*Report
	// DDL lists the statements migrate would run first (plan only).
	DDL []DDL `json:"ddl,omitempty"`
	// DDLProblems are differences migrate would refuse (plan only).
	DDLProblems string `json:"ddl_problems,omitempty"`
	// Estimate is what migrate would cost in source reads (plan only).
	Estimate *Estimate `json:"estimate,omitempty"`
	// Bytes is the number of bytes migrate would copy (files, plan only).
	Bytes *int64 `json:"bytes_to_copy,omitempty"`
	// References are the checks of the reference columns that declare
	// a foreign key (documents; plan and verify).
	References []ReferenceCheck `json:"references,omitempty"`
}

// DDL is one statement migrate would run.
type DDL struct {
	What string `json:"what"`
	SQL  string `json:"sql"`
}

// Estimate is the projected source cost of a migration.
type Estimate struct {
	// Records is the number of source records (from aggregation counts).
	Records int64 `json:"records"`
	// Reads is the billable reads migrate would make.
	Reads int64 `json:"reads"`
	// PricePer100k is the price used, per 100,000 reads.
	PricePer100k float64 `json:"price_per_100k_reads"`
	// Cost is Reads × PricePer100k / 100,000.
	Cost float64 `json:"cost"`
}

// NewDocument assembles the document for a command.
func NewDocument(command string, kinds []KindReport) *Document {
	d := &Document{Command: command, Version: 1, Generated: time.Now().UTC(), Identical: true, Kinds: kinds}
	for _, k := range kinds {
		if k.Report != nil && !k.Report.Identical() {
			d.Identical = false
		}
		for _, r := range k.References {
			if r.KeyMismatches != 0 {
				d.Identical = false
			}
		}
	}
	return d
}

// WriteJSON writes the document as indented JSON.
func (d *Document) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// columns names the per-table numbers as each command means them.
func (d *Document) columns() []string {
	if d.Command == "plan" {
		return []string{"source", "insert", "update", "unchanged", "only in target", "overflow", "rejected"}
	}
	return []string{"processed", "matching", "mismatched", "missing in target", "extra in target", "overflow", "rejected"}
}

// row orders a table's counts as columns names them.
func (d *Document) row(t *TableReport) []int64 {
	if d.Command == "plan" {
		return []int64{t.Source, t.MissingInTarget, t.Mismatched, t.Matching, t.ExtraInTarget, t.Overflow, t.Rejected}
	}
	return []int64{t.Source, t.Matching, t.Mismatched, t.MissingInTarget, t.ExtraInTarget, t.Overflow, t.Rejected}
}

// WriteText writes the terminal report: a table per kind, samples, and for
// plan the DDL and the cost.
func (d *Document) WriteText(w io.Writer) error {
	for _, k := range d.Kinds {
		fmt.Fprintf(w, "== %ss", k.Kind)
		if k.Report != nil && !k.ReadTime.IsZero() {
			fmt.Fprintf(w, " (source snapshot %s)", k.ReadTime.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
		if len(k.DDL) > 0 {
			fmt.Fprintln(w, "DDL migrate would run:")
			for _, s := range k.DDL {
				fmt.Fprintf(w, "  -- %s\n  %s;\n", s.What, strings.ReplaceAll(s.SQL, "\n", "\n  "))
			}
		}
		if k.DDLProblems != "" {
			fmt.Fprintln(w, "migrate would refuse:", k.DDLProblems)
		}
		if k.Report != nil {
			d.writeTables(w, k)
		}
		for _, line := range referenceLines(k.References, d.Command == "verify") {
			fmt.Fprintln(w, line)
		}
		if k.Bytes != nil {
			fmt.Fprintf(w, "bytes to copy: %d\n", *k.Bytes)
		}
		if e := k.Estimate; e != nil {
			fmt.Fprintf(w, "migrate would read %d records: about %d billable reads, %.4f at %.4f per 100,000 reads\n", e.Records, e.Reads, e.Cost, e.PricePer100k)
		}
		if k.Report != nil && k.SourceReads >= 0 {
			fmt.Fprintf(w, "this %s made %d billable source reads\n", d.Command, k.SourceReads)
		}
	}
	if d.Command == "verify" {
		if d.Identical {
			fmt.Fprintln(w, "identical: the target holds exactly the source's records")
		} else {
			fmt.Fprintln(w, "DIFFERENT: see the tables above")
		}
	}
	return nil
}

// writeTables writes one kind's table of counts and its samples.
func (d *Document) writeTables(w io.Writer, k KindReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "table\t%s\t\n", strings.Join(d.columns(), "\t"))
	for _, t := range k.Tables {
		fmt.Fprintf(tw, "%s", t.Table)
		for _, n := range d.row(t) {
			fmt.Fprintf(tw, "\t%d", n)
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
	for _, t := range k.Tables {
		if t.Excluded > 0 || t.ExcludedInTarget > 0 {
			fmt.Fprintf(w, "%s: %d source record(s) excluded by the erasure list; %d row(s) of excluded keys in the target\n",
				t.Table, t.Excluded, t.ExcludedInTarget)
		}
	}
	for _, t := range k.Tables {
		for _, s := range t.Samples {
			fmt.Fprintf(w, "  %s %s %q", t.Table, strings.ReplaceAll(s.Outcome, "_", " "), s.Key)
			if len(s.Fields) > 0 {
				quoted := make([]string, len(s.Fields))
				for i, f := range s.Fields {
					quoted[i] = fmt.Sprintf("%q", f)
				}
				fmt.Fprintf(w, " fields: %s", strings.Join(quoted, ", "))
			}
			if s.Reason != "" {
				fmt.Fprintf(w, ": %s", s.Reason)
			}
			fmt.Fprintln(w)
		}
	}
}

// WriteHTML writes a self-contained page (no external resources): per
// kind a bar chart of each table's outcomes and the samples.
func (d *Document) WriteHTML(w io.Writer) error {
	return htmlTemplate.Execute(w, d)
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"cols": func(d *Document) []string { return d.columns() },
	"nums": func(d *Document, t *TableReport) []int64 { return d.row(t) },
	"bars": bars,
	"when": func(t time.Time) string { return t.Format(time.RFC3339) },
	"human": func(s string) string {
		return strings.ReplaceAll(s, "_", " ")
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>baasmigrate {{.Command}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem} h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}
.ok{color:#1a7f37}.bad{color:#cf222e} pre{background:#f6f8fa;padding:.5rem;overflow:auto}
.legend span{display:inline-block;margin-right:1rem} .sw{width:.8rem;height:.8rem;display:inline-block;margin-right:.3rem;vertical-align:middle}
</style></head><body>
<h1>baasmigrate {{.Command}} — {{when .Generated}}</h1>
<p id="verdict" class="{{if .Identical}}ok{{else}}bad{{end}}">{{if .Identical}}Identical: no table differs.{{else}}Differences found.{{end}}</p>
{{range $k := .Kinds}}
<section class="kind" data-kind="{{$k.Kind}}">
<h2>{{$k.Kind}}s</h2>
{{if $k.DDL}}<h3>DDL migrate would run</h3><pre>{{range $k.DDL}}-- {{.What}}
{{.SQL}};
{{end}}</pre>{{end}}
{{if $k.DDLProblems}}<p class="bad">{{$k.DDLProblems}}</p>{{end}}
{{if $k.References}}<h3>References</h3><ul>{{range $k.References}}<li class="{{if .KeyMismatches}}bad{{end}}">{{.Table}}.{{.Column}} → {{.Target}}: {{.Dangling}} dangling{{if .KeyMismatches}}, {{.KeyMismatches}} rows' key columns differ from their path{{end}}</li>{{end}}</ul>{{end}}
{{if $k.Report}}
<div class="legend"><span><i class="sw" style="background:#2da44e"></i>matching</span><span><i class="sw" style="background:#bf8700"></i>mismatched</span><span><i class="sw" style="background:#cf222e"></i>missing in target</span><span><i class="sw" style="background:#8250df"></i>extra in target</span><span><i class="sw" style="background:#57606a"></i>rejected</span></div>
{{bars $k.Report}}
<table><tr><th>table</th>{{range cols $}}<th>{{.}}</th>{{end}}</tr>
{{range $t := $k.Tables}}<tr data-table="{{$t.Table}}"><td>{{$t.Table}}</td>{{range nums $ $t}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{range $t := $k.Tables}}{{if $t.Samples}}<h3>{{$t.Table}}: samples</h3><ul>{{range $t.Samples}}<li>{{human .Outcome}} <code>{{.Key}}</code>{{if .Fields}} fields: {{range $i, $f := .Fields}}{{if $i}}, {{end}}<code>{{$f}}</code>{{end}}{{end}}{{if .Reason}}: {{.Reason}}{{end}}</li>{{end}}</ul>{{end}}{{end}}
{{if $k.Estimate}}<p>migrate would read {{$k.Estimate.Records}} records: about {{$k.Estimate.Reads}} billable reads ({{printf "%.4f" $k.Estimate.Cost}} at {{printf "%.4f" $k.Estimate.PricePer100k}} per 100,000).</p>{{end}}
{{if $k.Bytes}}<p>bytes to copy: {{$k.Bytes}}</p>{{end}}
{{end}}
</section>
{{end}}
</body></html>
`))

// bars draws one horizontal stacked bar per table as inline SVG.
func bars(r *Report) template.HTML {
	const width, rowH, label = 640, 22, 220
	var max int64 = 1
	for _, t := range r.Tables {
		if n := t.Matching + t.Mismatched + t.MissingInTarget + t.ExtraInTarget + t.Rejected; n > max {
			max = n
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="outcomes per table">`, width+label, rowH*len(r.Tables)+4)
	for i, t := range r.Tables {
		y := i*rowH + 2
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="12">%s</text>`, y+14, template.HTMLEscapeString(t.Table))
		x := float64(label)
		for _, seg := range []struct {
			n     int64
			color string
		}{{t.Matching, "#2da44e"}, {t.Mismatched, "#bf8700"}, {t.MissingInTarget, "#cf222e"}, {t.ExtraInTarget, "#8250df"}, {t.Rejected, "#57606a"}} {
			if seg.n == 0 {
				continue
			}
			w := float64(seg.n) / float64(max) * width
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%d</title></rect>`, x, y, w, rowH-6, seg.color, seg.n)
			x += w
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
