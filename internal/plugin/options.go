// Package plugin holds what extractors and loaders share to describe
// themselves: options with help text, and the configuration built from
// them. The CLI derives its flags and config-file keys from these specs.
package plugin

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Option describes one setting of a plugin.
type Option struct {
	// Name is the flag and config-file key, in kebab case ("objects-prefix").
	// Plugins of the same source share options by using the same name with
	// the same meaning.
	Name string
	// Help starts with one sentence saying what the option does. It is
	// shown as written: backquotes in it are not taken as the name of the
	// option's value (Type names the value).
	Help string
	// Type is the kind of value the option takes (String when unset).
	// Values of other types are checked when the configuration is resolved,
	// so that a plugin reading them with Config.Int, Duration, Size or Bool
	// gets no syntax error.
	Type Type
	// Default is used when the option is not set. It must be a valid value
	// of Type.
	Default string
	// Env names environment variables consulted, in order, when the option is
	// not set explicitly (before Default).
	Env []string
	// Required options must end up non-empty.
	Required bool
	// Secret options are never printed, logged or written to reports.
	Secret bool
}

// Type is the kind of value an option takes.
type Type int

// Option types. Each names its value in help (ValueName) and is checked by
// Check.
const (
	// String is any text (the default).
	String Type = iota
	// Int is a whole number, read with Config.Int.
	Int
	// Duration is a Go duration such as 250ms, 30s, 2m or 1h30m; negative
	// ones are refused (whether zero makes sense is for the option's
	// reader to say). Read it with Config.Duration.
	Duration
	// Size is a positive number of bytes with an optional unit: B, KiB,
	// MiB, GiB, or KB, MB, GB as powers of 1000 ("256MiB"). Read it with
	// Config.Size.
	Size
	// Switch is true or false; a flag given without a value (--name)
	// means true. Read it with Config.Bool.
	Switch
)

// ValueName is how help names a value of t: "string", "int", "duration",
// "size", or "" for a Switch, which needs none.
func (t Type) ValueName() string {
	switch t {
	case Int:
		return "int"
	case Duration:
		return "duration"
	case Size:
		return "size"
	case Switch:
		return ""
	}
	return "string"
}

// Check reports whether value is valid for o's type; "" (unset) always
// is. The error names the option and says what a valid value looks like.
func (o Option) Check(value string) error {
	if value == "" {
		return nil
	}
	var err error
	switch o.Type {
	case Int:
		_, err = parseInt(value)
	case Duration:
		_, err = parseDuration(value)
	case Size:
		_, err = parseSize(value)
	case Switch:
		_, err = parseBool(value)
	}
	if err != nil {
		return fmt.Errorf("--%s: %w", o.Name, err)
	}
	return nil
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a positive duration like 30s or 2m", s)
	}
	return d, nil
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}

// parseSize reads a byte size: a positive whole number with an optional
// unit (B, KiB, MiB, GiB, or KB, MB, GB as powers of 1000).
func parseSize(orig string) (int64, error) {
	s := strings.TrimSpace(orig)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size like 256MiB", orig)
	}
	return n * mult, nil
}

// Config holds the option values a plugin is constructed with.
type Config map[string]string

// String returns the value of name ("" when unset).
func (c Config) String(name string) string { return c[name] }

// Int returns the value of name as an int, or def when unset.
func (c Config) Int(name string, def int) (int, error) { return value(c, name, def, parseInt) }

// Duration returns the value of a Duration option (0 when unset).
func (c Config) Duration(name string) (time.Duration, error) {
	return value(c, name, 0, parseDuration)
}

// Size returns the value of a Size option in bytes (0 when unset).
func (c Config) Size(name string) (int64, error) { return value(c, name, 0, parseSize) }

// Bool returns the value of a Switch option (false when unset).
func (c Config) Bool(name string) (bool, error) { return value(c, name, false, parseBool) }

// value parses the value of name, or returns def when unset; the error
// names the option.
func value[T any](c Config, name string, def T, parse func(string) (T, error)) (T, error) {
	s := c[name]
	if s == "" {
		return def, nil
	}
	v, err := parse(s)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("--%s: %w", name, err)
	}
	return v, nil
}

// Resolve builds the configuration of opts. Each option takes, in order
// of precedence, the value set explicitly (set reports it: a flag, or the
// config file), the first non-empty environment variable of its Env
// (getenv reads them), or its Default. Every value is then checked against
// its option's Type; the error names every invalid one (and the
// environment variable it came from), so the user can fix them all at
// once. Required options are not checked here: see CheckRequired.
func Resolve(opts []Option, set func(name string) (string, bool), getenv func(string) string) (Config, error) {
	cfg := Config{}
	var problems []string
	for _, o := range opts {
		from := ""
		if v, ok := set(o.Name); ok {
			cfg[o.Name] = v
		} else {
			for _, env := range o.Env {
				if v := getenv(env); v != "" {
					cfg[o.Name], from = v, env
					break
				}
			}
			if cfg[o.Name] == "" && o.Default != "" {
				cfg[o.Name] = o.Default
			}
		}
		if err := o.Check(cfg[o.Name]); err != nil {
			if from != "" {
				err = fmt.Errorf("%w (from $%s)", err, from)
			}
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return cfg, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return cfg, nil
}

// CheckRequired returns one error naming every required option that is
// empty, so the user can fix them all at once.
func CheckRequired(opts []Option, c Config) error {
	var missing []string
	for _, o := range opts {
		if o.Required && c[o.Name] == "" {
			missing = append(missing, "--"+o.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required option(s): %s", strings.Join(missing, ", "))
	}
	return nil
}

// Merge returns the union of option lists, each name once. Two plugins
// declaring the same name must agree on its help, type and secrecy; a
// disagreement is a programming error and panics at start-up.
func Merge(lists ...[]Option) []Option {
	byName := map[string]Option{}
	for _, l := range lists {
		for _, o := range l {
			if prev, ok := byName[o.Name]; ok {
				if prev.Secret != o.Secret || prev.Help != o.Help || prev.Type != o.Type {
					panic(fmt.Sprintf("plugin: option --%s declared twice with different meanings", o.Name))
				}
				continue
			}
			byName[o.Name] = o
		}
	}
	out := make([]Option, 0, len(byName))
	for _, o := range byName {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
