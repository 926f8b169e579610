package mappings

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a mapping file, located at a line.
type Problem struct {
	File    string
	Line    int
	Message string
}

// String renders the problem as "FILE:LINE: message".
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

// ValidationError lists every problem found in a mapping, in line order.
type ValidationError struct {
	Problems []Problem
}

// Error renders one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems for one file.
type problems struct {
	file string
	list []Problem
}

func (p *problems) addf(line int, format string, args ...any) {
	p.list = append(p.list, Problem{File: p.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// err returns the collected problems as a *ValidationError, or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Line < p.list[j].Line })
	return &ValidationError{Problems: p.list}
}

// displayFile is the name validation messages use for a mapping's file.
func displayFile(name string) string {
	if name == "" {
		return "mapping"
	}
	return name
}

// Load reads and parses the mapping file at path (see Parse).
func Load(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading mapping: %w", err)
	}
	return Parse(data, path)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// Parse reads a mapping from YAML. It is strict: unknown keys, duplicate
// keys and values of the wrong shape are errors, and so is everything
// Validate rejects. Type spellings are normalised to the canonical ones of
// SupportedTypes. All problems are returned at once as a *ValidationError
// whose messages start "FILE:LINE: " (filename as given).
func Parse(data []byte, filename string) (*Mapping, error) {
	file := displayFile(filename)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		return nil, &ValidationError{Problems: []Problem{{File: file, Line: line, Message: "invalid YAML: " + msg}}}
	}
	p := &problems{file: file}
	m := &Mapping{File: filename}
	if len(doc.Content) == 0 {
		p.addf(1, "the file is empty; a mapping needs at least version: %d", CurrentVersion)
		return nil, p.err()
	}
	decodeMapping(doc.Content[0], m, p)
	if len(p.list) == 0 {
		if err := m.Validate(); err != nil {
			return nil, err
		}
		return m, nil
	}
	// Report shape problems together with whatever else validation finds.
	m.validate(p)
	return nil, p.err()
}

// fieldsOf checks that n is a mapping with only allowed, non-repeated keys
// and returns key → value node.
func fieldsOf(n *yaml.Node, what string, allowed []string, p *problems) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, "%s must be a mapping of keys to values, got %s", what, kindName(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if !contains(allowed, key) {
			p.addf(k.Line, "unknown key %q in %s (allowed: %s)", key, what, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[key]; dup {
			p.addf(k.Line, "key %q appears twice in %s", key, what)
			continue
		}
		out[key] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// str reads a string scalar; YAML's null is refused because it is almost
// always an unquoted name ("null", "~") the user meant literally.
func str(n *yaml.Node, key string, p *problems) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.addf(n.Line, "%s must be a string, got %s", key, kindName(n))
		return ""
	}
	if n.Tag == "!!null" {
		p.addf(n.Line, "%s is YAML's null; quote it (%s: %q) if you mean that text", key, key, n.Value)
		return ""
	}
	return n.Value
}

func integer(n *yaml.Node, key string, p *problems) int64 {
	if n == nil {
		return 0
	}
	var i int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		p.addf(n.Line, "%s must be an integer, got %s", key, kindName(n))
		return 0
	}
	return i
}

func strList(n *yaml.Node, key string, p *problems) []string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.addf(n.Line, "%s must be a list of strings, got %s", key, kindName(n))
		return nil
	}
	var out []string
	for _, e := range n.Content {
		out = append(out, str(e, key+" entry", p))
	}
	return out
}

var (
	mappingKeys = []string{"version", "schema", "tables"}
	tableKeys   = []string{"collection", "table", "id_column", "parent_columns", "documents", "columns", "exclude", "children"}
	columnKeys  = []string{"field", "column", "type", "source", "references", "seen", "transform", TransformMask, TransformHash, TransformTokenize, TransformTruncate}
	maskKeys    = []string{"keep_first", "keep_last", "email"}
	keyEnvKeys  = []string{"key_env"}
	truncKeys   = []string{"unit", "grid", "digits"}
)

func decodeMapping(n *yaml.Node, m *Mapping, p *problems) {
	f := fieldsOf(n, "the mapping", mappingKeys, p)
	if f == nil {
		return
	}
	if v, ok := f["version"]; ok {
		m.Version = int(integer(v, "version", p))
	} else {
		p.addf(n.Line, "version is missing; this format is version: %d", CurrentVersion)
		m.Version = CurrentVersion
	}
	m.Schema = str(f["schema"], "schema", p)
	if m.Schema == "" && f["schema"] == nil {
		m.Schema = DefaultSchema
	}
	for _, e := range listItems(f["tables"], "tables", "tables", p) {
		t := &Table{Line: e.Line}
		decodeTable(e, t, p)
		m.Tables = append(m.Tables, t)
	}
}

// listItems returns the items of the list under key (nil node: none); a
// node that is not a list is reported as not a list of what, and has none.
func listItems(n *yaml.Node, key, what string, p *problems) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.addf(n.Line, "%s must be a list of %s, got %s", key, what, kindName(n))
		return nil
	}
	return n.Content
}

func decodeTable(n *yaml.Node, t *Table, p *problems) {
	f := fieldsOf(n, "a table", tableKeys, p)
	if f == nil {
		return
	}
	t.Collection = str(f["collection"], "collection", p)
	t.Name = str(f["table"], "table", p)
	t.IDColumn = str(f["id_column"], "id_column", p)
	t.ParentColumns = strList(f["parent_columns"], "parent_columns", p)
	t.Documents = integer(f["documents"], "documents", p)
	t.Exclude = strList(f["exclude"], "exclude", p)
	if en := f["exclude"]; en != nil && en.Kind == yaml.SequenceNode {
		for _, e := range en.Content {
			t.excludeLines = append(t.excludeLines, e.Line)
		}
	}
	t.Children = decodeChildren(f["children"], p)
	for _, e := range listItems(f["columns"], "columns", "columns", p) {
		c := &Column{Line: e.Line}
		if decodeColumn(e, c, p) {
			t.Drop = append(t.Drop, DropField{Field: c.Field, Line: c.Line})
			continue
		}
		t.Columns = append(t.Columns, c)
	}
}

// decodeColumn reads one columns entry into c; it reports true for an
// entry {field: PATH, transform: drop}, which is a dropped field, not a
// column.
func decodeColumn(n *yaml.Node, c *Column, p *problems) (drop bool) {
	f := fieldsOf(n, "a column", columnKeys, p)
	if f == nil {
		return false
	}
	if tn := f["transform"]; tn != nil {
		kind := str(tn, "transform", p)
		if kind == TransformDrop {
			c.Field = str(f["field"], "field", p)
			for _, k := range columnKeys {
				if k != "field" && k != "transform" && f[k] != nil {
					p.addf(f[k].Line, "field %s is dropped (transform: drop): it has no column, so %s is not allowed", c.Field, k)
				}
			}
			return true
		}
		if kind != "" {
			c.Transform = &Transform{Kind: kind}
		} else if tn.Kind == yaml.ScalarNode && tn.Tag != "!!null" {
			p.addf(tn.Line, "transform is empty; use one of %s, or leave transform out", strings.Join(TransformKinds, ", "))
		}
	}
	for _, k := range []string{TransformMask, TransformHash, TransformTokenize, TransformTruncate} {
		pn := f[k]
		if pn == nil {
			continue
		}
		if c.Transform == nil || c.Transform.Kind != k {
			p.addf(pn.Line, "%s parameters given but the column's transform is not %s (write transform: %s)", k, k, k)
			continue
		}
		decodeTransformParams(pn, k, c.Transform, p)
	}
	c.Field = str(f["field"], "field", p)
	c.Name = str(f["column"], "column", p)
	if cn := f["column"]; cn != nil {
		c.Note = strings.TrimSpace(strings.TrimPrefix(cn.LineComment, "#"))
	}
	c.Type = str(f["type"], "type", p)
	if c.Type != "" {
		if t, err := canonicalType(c.Type); err == nil {
			c.Type = t
		}
	}
	c.Source = str(f["source"], "source", p)
	if sn := f["source"]; sn != nil {
		c.SuggestReferences = parseSuggestion(sn.LineComment)
	}
	c.References = str(f["references"], "references", p)
	if sn := f["seen"]; sn != nil {
		sf := fieldsOfAny(sn, "seen", p)
		for _, kv := range sf {
			if c.Seen == nil {
				c.Seen = map[string]int64{}
			}
			c.Seen[kv[0].Value] = integer(kv[1], "seen count", p)
		}
	}
	return false
}

// decodeTransformParams reads the parameter mapping of transform kind.
func decodeTransformParams(n *yaml.Node, kind string, t *Transform, p *problems) {
	allowed := map[string][]string{TransformMask: maskKeys, TransformHash: keyEnvKeys, TransformTokenize: keyEnvKeys, TransformTruncate: truncKeys}[kind]
	f := fieldsOf(n, kind+" parameters", allowed, p)
	if f == nil {
		return
	}
	switch kind {
	case TransformMask:
		t.KeepFirst = int(integer(f["keep_first"], "keep_first", p))
		t.KeepLast = int(integer(f["keep_last"], "keep_last", p))
		if en := f["email"]; en != nil {
			if en.Kind != yaml.ScalarNode || en.Tag != "!!bool" || en.Decode(&t.Email) != nil {
				p.addf(en.Line, "email must be true or false, got %s", kindName(en))
			}
		}
	case TransformHash, TransformTokenize:
		t.KeyEnv = str(f["key_env"], "key_env", p)
	case TransformTruncate:
		t.Unit = str(f["unit"], "unit", p)
		if dn := f["digits"]; dn != nil {
			t.Digits, t.HasDigits = int(integer(dn, "digits", p)), true
		}
		if gn := f["grid"]; gn != nil {
			if gn.Kind != yaml.ScalarNode || (gn.Tag != "!!float" && gn.Tag != "!!int") || gn.Decode(&t.Grid) != nil {
				p.addf(gn.Line, "grid must be a number of degrees, got %s", kindName(gn))
			}
		}
	}
}

// fieldsOfAny returns the key/value node pairs of a mapping with free keys.
func fieldsOfAny(n *yaml.Node, what string, p *problems) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, "%s must be a mapping, got %s", what, kindName(n))
		return nil
	}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

const header = `baasmigrate mapping: how Firestore documents become PostgreSQL rows.
Review it, edit it, commit it; see docs/mapping.md for the full format.
Each table maps one collection pattern ("users/{}/orders": document IDs
replaced by {}) to one table keyed by parent_columns (the ancestor document
IDs) and id_column. Besides the columns below, every table has
_create_time, _update_time, _overflow (jsonb: every field or value no
column holds, so nothing is lost) and _missing (placeholder parents).
A column maps a field path (backticks quote odd names: ` + "`a.b`" + `) to a
column name and PostgreSQL type; source says which Firestore values it
holds. seen and documents are what inference observed (informational).
exclude lists field paths deliberately not migrated. A column's
transform (mask, hash, tokenize, truncate) replaces its personal data
before it is stored anywhere; {field: F, transform: drop} drops a field.`

// Marshal writes the mapping as YAML with a header comment explaining the
// format. The output depends only on the mapping's content (tables and
// columns in their order, seen counts sorted by name), and Parse(Marshal(m))
// gives back m (File and Line aside).
func (m *Mapping) Marshal() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode, HeadComment: header}
	addScalar(root, "version", strconv.Itoa(m.Version), "!!int")
	addScalar(root, "schema", m.Schema, "!!str")
	tables := &yaml.Node{Kind: yaml.SequenceNode}
	for _, t := range m.Tables {
		tables.Content = append(tables.Content, tableNode(t))
	}
	root.Content = append(root.Content, strNode("tables"), tables)
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding mapping as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding mapping as YAML: %w", err)
	}
	return []byte(b.String()), nil
}

func tableNode(t *Table) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	addScalar(n, "collection", t.Collection, "!!str")
	addScalar(n, "table", t.Name, "!!str")
	addScalar(n, "id_column", t.IDColumn, "!!str")
	if len(t.ParentColumns) > 0 {
		n.Content = append(n.Content, strNode("parent_columns"), strSeq(t.ParentColumns, yaml.FlowStyle))
	}
	if t.Documents != 0 {
		addScalar(n, "documents", strconv.FormatInt(t.Documents, 10), "!!int")
	}
	if len(t.Columns) > 0 || len(t.Drop) > 0 {
		cols := &yaml.Node{Kind: yaml.SequenceNode}
		for _, c := range t.Columns {
			cols.Content = append(cols.Content, columnNode(c))
		}
		for _, d := range t.Drop {
			dn := &yaml.Node{Kind: yaml.MappingNode}
			addScalar(dn, "field", d.Field, "!!str")
			addScalar(dn, "transform", TransformDrop, "!!str")
			cols.Content = append(cols.Content, dn)
		}
		n.Content = append(n.Content, strNode("columns"), cols)
	}
	if len(t.Exclude) > 0 {
		n.Content = append(n.Content, strNode("exclude"), strSeq(t.Exclude, 0))
	}
	if len(t.Children) > 0 {
		n.Content = append(n.Content, strNode("children"), childrenNode(t.Children))
	}
	return n
}

func columnNode(c *Column) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	addScalar(n, "field", c.Field, "!!str")
	addScalar(n, "column", c.Name, "!!str")
	if c.Note != "" {
		n.Content[len(n.Content)-1].LineComment = "# " + c.Note
	}
	addScalar(n, "type", c.Type, "!!str")
	if c.Source != "" {
		addScalar(n, "source", c.Source, "!!str")
		if c.SuggestReferences != "" {
			n.Content[len(n.Content)-1].LineComment = suggestionComment(c.SuggestReferences)
		}
	}
	if c.References != "" {
		addScalar(n, "references", c.References, "!!str")
	}
	if t := c.Transform; t != nil {
		addScalar(n, "transform", t.Kind, "!!str")
		if params := transformParams(t); params != nil {
			n.Content = append(n.Content, strNode(t.Kind), params)
		}
	}
	if len(c.Seen) > 0 {
		seen := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		for _, k := range sortedKeys(c.Seen) {
			addScalar(seen, k, strconv.FormatInt(c.Seen[k], 10), "!!int")
		}
		n.Content = append(n.Content, strNode("seen"), seen)
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func addScalar(n *yaml.Node, key, value, tag string) {
	n.Content = append(n.Content, strNode(key), &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value})
}

func strSeq(list []string, style yaml.Style) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: style}
	for _, s := range list {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

// transformParams is the YAML of t's parameters, or nil when it has none.
func transformParams(t *Transform) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	switch t.Kind {
	case TransformMask:
		if t.Email {
			addScalar(n, "email", "true", "!!bool")
		}
		if t.KeepFirst != 0 {
			addScalar(n, "keep_first", strconv.Itoa(t.KeepFirst), "!!int")
		}
		if t.KeepLast != 0 {
			addScalar(n, "keep_last", strconv.Itoa(t.KeepLast), "!!int")
		}
	case TransformHash, TransformTokenize:
		if t.KeyEnv != "" {
			addScalar(n, "key_env", t.KeyEnv, "!!str")
		}
	case TransformTruncate:
		if t.Unit != "" {
			addScalar(n, "unit", t.Unit, "!!str")
		}
		if t.Grid != 0 {
			addScalar(n, "grid", strconv.FormatFloat(t.Grid, 'f', -1, 64), "!!float")
		}
		if t.HasDigits {
			addScalar(n, "digits", strconv.Itoa(t.Digits), "!!int")
		}
	}
	if len(n.Content) == 0 {
		return nil
	}
	return n
}
