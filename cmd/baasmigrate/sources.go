package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/plugin"

	// Every source registers its extractors.
	_ "github.com/baasmigrate/baasmigrate/extractors/all"
)

// sourceOption picks the platform migrated from: the extractors of
// every kind are those it registers.
var sourceOption = plugin.Option{
	Name:    "source",
	Help:    "Platform to migrate from; baasmigrate sources lists them, their kinds and options.",
	Default: "firebase",
}

// sourceName resolves --source (flag or config file, else its default).
func sourceName(fs *pflag.FlagSet) string {
	// A string option: resolving it cannot fail.
	cfg, _ := pluginConfig(fs, []plugin.Option{sourceOption})
	return cfg.String(sourceOption.Name)
}

func init() {
	extraCommands = append(extraCommands, newSourcesCommand)
}

// sourceList is what `baasmigrate sources` prints: every registered
// source, its kinds and their options.
type sourceList struct {
	Sources []sourceInfo `json:"sources"`
}

type sourceInfo struct {
	Name  string     `json:"name"`
	Kinds []kindInfo `json:"kinds"`
}

type kindInfo struct {
	Kind      string       `json:"kind"`
	Extractor string       `json:"extractor"`
	Help      string       `json:"help"`
	Options   []optionInfo `json:"options"`
}

type optionInfo struct {
	Name string `json:"name"`
	// Type is the value's type as --help shows it ("int", "duration",
	// "size", "string"), or "switch".
	Type string `json:"type"`
	// Default is left out for secret options.
	Default  string   `json:"default,omitempty"`
	Env      []string `json:"env,omitempty"`
	Help     string   `json:"help"`
	Required bool     `json:"required,omitempty"`
	Secret   bool     `json:"secret,omitempty"`
}

// listSources describes the registry: sources sorted by name, each kind in
// migration order, options by name.
func listSources() sourceList {
	var out sourceList
	for _, spec := range extractors.All() {
		if n := len(out.Sources); n == 0 || out.Sources[n-1].Name != spec.Source {
			out.Sources = append(out.Sources, sourceInfo{Name: spec.Source})
		}
		k := kindInfo{Kind: string(spec.Kind), Extractor: spec.Name, Help: spec.Help, Options: []optionInfo{}}
		for _, o := range plugin.Merge(spec.Options) {
			oi := optionInfo{Name: o.Name, Type: o.Type.ValueName(), Default: o.Default, Env: o.Env, Help: o.Help, Required: o.Required, Secret: o.Secret}
			if o.Type == plugin.Switch {
				oi.Type = "switch"
			}
			if o.Secret {
				oi.Default = ""
			}
			k.Options = append(k.Options, oi)
		}
		src := &out.Sources[len(out.Sources)-1]
		src.Kinds = append(src.Kinds, k)
	}
	return out
}

// writeText prints the list for people.
func (l sourceList) writeText(w io.Writer) error {
	var b strings.Builder
	for i, s := range l.Sources {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s (--source %s)\n", s.Name, s.Name)
		for _, k := range s.Kinds {
			fmt.Fprintf(&b, "  %ss: extractor %s. %s\n", k.Kind, k.Extractor, k.Help)
			for _, o := range k.Options {
				var notes []string
				if o.Required {
					notes = append(notes, "required")
				}
				if o.Secret {
					notes = append(notes, "secret")
				}
				if o.Default != "" {
					def := o.Default
					if o.Type == "string" {
						def = strconv.Quote(def)
					}
					notes = append(notes, "default "+def)
				}
				if len(o.Env) > 0 {
					notes = append(notes, "env "+strings.Join(o.Env, ", "))
				}
				line := "    --" + o.Name
				if o.Type != "switch" {
					line += " " + o.Type
				}
				if len(notes) > 0 {
					line += " (" + strings.Join(notes, "; ") + ")"
				}
				fmt.Fprintf(&b, "%s\n        %s\n", line, o.Help)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newSourcesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "List the platforms baasmigrate migrates from, their kinds of records and options",
		Long: `sources lists every source --source can name: the kinds of records it offers
(each read by one extractor) and the options of each, with their defaults and
environment variables. Secret options are marked; their values are never shown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, _ := cmd.Flags().GetString("format")
			l := listSources()
			switch format {
			case "text":
				return l.writeText(cmd.OutOrStdout())
			case "json":
				return writeJSON(cmd.OutOrStdout(), l)
			}
			return &exitStatus{code: exitError, err: fmt.Errorf("--format: %q is not text or json", format)}
		},
	}
	cmd.Flags().String("format", "text", "Output format: text or json")
	return cmd
}
