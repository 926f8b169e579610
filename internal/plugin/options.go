// Package plugin holds what extractors and loaders share to describe
// themselves: options with help text, and the configuration built from
// them. The CLI derives its flags and config-file keys from these specs.
package plugin

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Option describes one setting of a plugin.
type Option struct {
	// Name is the flag and config-file key, in kebab case ("objects-prefix").
	// Plugins of the same source share options by using the same name with
	// the same meaning.
	Name string
	// Help starts with one sentence saying what the option does.
	Help string
	// Default is used when the option is not set.
	Default string
	// Env names environment variables consulted, in order, when the option is
	// not set explicitly (before Default).
	Env []string
	// Required options must end up non-empty.
	Required bool
	// Secret options are never printed, logged or written to reports.
	Secret bool
	// Switch options are true or false; a flag given without a value
	// (--name) means true. Read them with Config.Bool.
	Switch bool
}

// Config holds the option values a plugin is constructed with.
type Config map[string]string

// String returns the value of name ("" when unset).
func (c Config) String(name string) string { return c[name] }

// Int returns the value of name as an int, or def when unset.
func (c Config) Int(name string, def int) (int, error) {
	s := c[name]
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("option --%s: %q is not a whole number", name, s)
	}
	return n, nil
}

// Bool returns the value of a Switch option (false when unset).
func (c Config) Bool(name string) (bool, error) {
	s := c[name]
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("option --%s: %q is not true or false", name, s)
	}
	return b, nil
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
// declaring the same name must agree on its help and secrecy; a
// disagreement is a programming error and panics at start-up.
func Merge(lists ...[]Option) []Option {
	byName := map[string]Option{}
	for _, l := range lists {
		for _, o := range l {
			if prev, ok := byName[o.Name]; ok {
				if prev.Secret != o.Secret || prev.Help != o.Help {
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
