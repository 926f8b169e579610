package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// newRootCommand builds the command tree.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "baasmigrate",
		Short: "Move users, documents and files off a Backend-as-a-Service onto PostgreSQL and an object store",
		Long: `baasmigrate moves an application off Firebase onto infrastructure you control:
Auth users (passwords keep working), Firestore documents (every subcollection and
reference) and Storage files, into PostgreSQL and an S3-compatible store or a directory.

Every flag can also be set in a YAML file given with --config (keys are flag names);
command-line flags win over the file, the file over environment variables.

Exit status (every command):
  0  done, nothing to report
  1  done, with problems: records rejected (migrate, unless --allow-rejects),
     differences (verify), or a plan that migrate would refuse (plan)
  2  error: the command could not do its job (the message says why)
  3  interrupted by SIGINT or SIGTERM: run the same command again to resume.
     The first signal stops reading and lets the batches in flight commit (at
     most 20s); a second one stops at once, rolling them back. Either way
     nothing committed is lost and the re-run continues from the checkpoints.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().String("config", "", "YAML `file` of settings; keys are flag names (e.g. workers: 8)")
	root.PersistentFlags().BoolP("verbose", "v", false, "Log progress notes and every retry as well as warnings")
	root.PersistentFlags().Bool("no-progress", false, "Do not draw progress bars (they are also off when stderr is not a terminal)")
	root.AddCommand(newMigrateCommand(), newInferCommand())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	root.SetGlobalNormalizationFunc(flagAlias)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyConfigFile(cmd, root); err != nil {
			return err
		}
		// Retries of every source and target call are logged here.
		cmd.SetContext(retry.WithLogger(cmd.Context(), newLogger(cmd)))
		return nil
	}
	return root
}

// flagAliases are further names flags are accepted under, on the command
// line and as --config keys: the name issue and docs readers may know a
// flag by where one flag serves several targets.
var flagAliases = map[string]string{
	// --email-confirm decides for both Supabase (export and direct load)
	// and Kratos.
	"supabase-email-confirm": "email-confirm",
}

// flagAlias is the root's normalization function (cobra applies it to
// every subcommand's flags): it maps flagAliases to the flag's name.
func flagAlias(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if to, ok := flagAliases[name]; ok {
		return pflag.NormalizedName(to)
	}
	return pflag.NormalizedName(name)
}

// extraCommands are added by files that implement further subcommands.
var extraCommands []func() *cobra.Command

// applyConfigFile sets every flag of cmd that the --config file names and
// the command line did not set.
func applyConfigFile(cmd, root *cobra.Command) error {
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s", yamlError(path, err))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s:%d: want a mapping of flag names to values", path, m.Line)
	}
	known := allFlagNames(root)
	var problems []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		f := cmd.Flags().Lookup(k.Value)
		if f == nil {
			if !known[k.Value] {
				problems = append(problems, fmt.Sprintf("%s:%d: unknown setting %q (not a flag of any command)", path, k.Line, k.Value))
			}
			continue // a setting for another command
		}
		if f.Changed {
			continue
		}
		val, err := scalarValue(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %s: %v", path, v.Line, k.Value, err))
			continue
		}
		if err := cmd.Flags().Set(k.Value, val); err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", path, v.Line, flagError(cmd, err)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("config file problems:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// yamlLine is how the YAML parser places a syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): `)

// yamlError places a YAML syntax error of the file at path as
// "path:line: message", the way compilers do.
func yamlError(path string, err error) string {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s:%s: %s", path, m[1], msg[len(m[0]):])
	}
	return path + ": " + strings.TrimPrefix(msg, "yaml: ")
}

// scalarValue renders a YAML scalar or a list of scalars as a flag value.
func scalarValue(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("lists may hold only plain values")
			}
			parts[i] = c.Value
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("want a value or a list of values")
}

func allFlagNames(root *cobra.Command) map[string]bool {
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return names
}

// addOptionFlags registers one flag per plugin option, named in help by
// its type ("--source-timeout duration"; a Switch takes no value). A value
// given on the command line or in the --config file is checked against
// the type as it is set. Defaults are not put into the flags:
// pluginConfig resolves them, after the environment.
func addOptionFlags(fs *pflag.FlagSet, opts []plugin.Option) {
	for _, o := range opts {
		if fs.Lookup(o.Name) != nil {
			continue
		}
		// pflag would take a backquoted word in the help as the value's
		// name; the type names it instead.
		help := strings.ReplaceAll(o.Help, "`", `"`)
		if len(o.Env) > 0 {
			help += " (env " + strings.Join(o.Env, ", ") + ")"
		}
		if o.Default != "" {
			if o.Type == plugin.String {
				help += fmt.Sprintf(" (default %q)", o.Default)
			} else {
				help += fmt.Sprintf(" (default %s)", o.Default)
			}
		}
		fs.Var(&optionValue{option: o}, o.Name, help)
		if o.Type == plugin.Switch {
			fs.Lookup(o.Name).NoOptDefVal = "true" // --name alone means true
		}
	}
}

// optionValue is the flag of a plugin option: its text, checked against
// the option's type when set.
type optionValue struct {
	option plugin.Option
	value  string
}

func (v *optionValue) String() string { return v.value }

func (v *optionValue) Set(s string) error {
	if err := v.option.Check(s); err != nil {
		return err
	}
	v.value = s
	return nil
}

// Type is the value's name in help; "bool" tells pflag to show none.
func (v *optionValue) Type() string {
	if v.option.Type == plugin.Switch {
		return "bool"
	}
	return v.option.Type.ValueName()
}

// flagError returns a flag's parse error without pflag's preamble when
// the cause names the option itself (a plugin option's check does).
func flagError(_ *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		if _, ok := invalid.GetFlag().Value.(*optionValue); ok {
			return invalid.Unwrap()
		}
	}
	return err
}

// pluginConfig resolves option values: flag or config file, then the
// environment, then the default (plugin.Resolve), each checked against its
// option's type.
func pluginConfig(fs *pflag.FlagSet, opts []plugin.Option) (plugin.Config, error) {
	return plugin.Resolve(opts, func(name string) (string, bool) {
		f := fs.Lookup(name)
		if f == nil || !f.Changed {
			return "", false
		}
		return f.Value.String(), true
	}, os.Getenv)
}

// newLogger returns the logger for cmd: warnings (or, with --verbose,
// everything down to debug: progress notes and each retry) as text on
// stderr.
func newLogger(cmd *cobra.Command) *slog.Logger {
	level := slog.LevelWarn
	if v, _ := cmd.Flags().GetBool("verbose"); v {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// showProgress reports whether to draw progress bars on w.
func showProgress(cmd *cobra.Command, w io.Writer) bool {
	if off, _ := cmd.Flags().GetBool("no-progress"); off {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
