package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

// These tests run the real command tree (newRootCommand) in-process and
// need no service: each stops before anything is read or written.

// serviceEnv are the variables through which the commands find services;
// the tests clear them so that nothing is reached by accident.
var serviceEnv = []string{
	"DATABASE_URL", "FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
	"GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
}

func clearServiceEnv(t *testing.T) {
	t.Helper()
	for _, k := range serviceEnv {
		t.Setenv(k, "")
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes baasmigrate with args as main does, and returns what it
// wrote and its exit status.
func run(t *testing.T, args ...string) result {
	t.Helper()
	root := newRootCommand()
	return runTree(t, root, args...)
}

func runTree(t *testing.T, root *cobra.Command, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := exitCode(&errb, err, false)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// walk calls fn for cmd and every command under it.
func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		walk(c, fn)
	}
}

func TestEverySubcommandHasShort(t *testing.T) {
	walk(newRootCommand(), func(c *cobra.Command) {
		if strings.TrimSpace(c.Short) == "" {
			t.Errorf("%q has no Short description", c.CommandPath())
		}
	})
}

// valueName is what help shows after a flag's name.
var valueName = regexp.MustCompile(`^[a-z][a-z0-9:-]*$`)

// TestHelpValueNames: no flag's value is named by a word of its help
// (pflag takes a backquoted word as the value's name), and every plugin
// option's value is named by its type.
func TestHelpValueNames(t *testing.T) {
	root := newRootCommand()
	walk(root, func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			name, usage := pflag.UnquoteUsage(f)
			if name != "" && !valueName.MatchString(name) {
				t.Errorf("%s --%s: value named %q", c.CommandPath(), f.Name, name)
			}
			if v, ok := f.Value.(*optionValue); ok {
				if want := v.option.Type.ValueName(); name != want {
					t.Errorf("%s --%s: value named %q, want its type's %q", c.CommandPath(), f.Name, name, want)
				}
				if usage != f.Usage || strings.Contains(usage, "`") {
					t.Errorf("%s --%s: help %q would be parsed for a value name", c.CommandPath(), f.Name, f.Usage)
				}
			}
		}
		c.LocalFlags().VisitAll(check)
		c.InheritedFlags().VisitAll(check)
	})

	for _, args := range [][]string{{"--help"}, {"migrate", "--help"}, {"plan", "--help"}, {"verify", "--help"}, {"infer", "--help"}} {
		res := run(t, args...)
		if res.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, res.code, res.stderr)
		}
		for _, bad := range []string{"--config workers: 8", "baasmigrate infer  ", "--mapping baasmigrate"} {
			if strings.Contains(res.stdout, bad) {
				t.Errorf("%v: help shows %q:\n%s", args, bad, res.stdout)
			}
		}
		if !regexp.MustCompile(`--config file +YAML file of settings`).MatchString(res.stdout) {
			t.Errorf("%v: help does not show --config file:\n%s", args, res.stdout)
		}
	}
	help := run(t, "migrate", "--help").stdout
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`--source-timeout duration +Longest wait`),
		regexp.MustCompile(`--target-timeout duration +Longest wait.*\(default 2m\)`),
		regexp.MustCompile(`--retry-attempts int +Attempts.*\(default 8\)`),
		regexp.MustCompile(`--retry-backoff duration +Delay`),
		regexp.MustCompile(`--share-target +Write into`),                           // a switch takes no value
		regexp.MustCompile(`--mapping string +Mapping file`),                       // not the backquoted words of its help
		regexp.MustCompile(`--postgres string +PostgreSQL .*\(env DATABASE_URL\)`), // environment named
		regexp.MustCompile(`--summary file +Also write`),                           // a deliberate backquoted name stays
	} {
		if !want.MatchString(help) {
			t.Errorf("migrate --help does not match %s:\n%s", want, help)
		}
	}
}

// TestOptionFlagsByType: addOptionFlags names each type's value, shows
// defaults, and checks values as they are set.
func TestOptionFlagsByType(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	addOptionFlags(fs, []plugin.Option{
		{Name: "n", Help: "A `count`.", Type: plugin.Int, Default: "4"},
		{Name: "d", Help: "A wait.", Type: plugin.Duration, Default: "1m"},
		{Name: "s", Help: "A size.", Type: plugin.Size, Default: "256MiB"},
		{Name: "b", Help: "A switch.", Type: plugin.Switch},
		{Name: "t", Help: "Text.", Default: "x y"},
	})
	usage := fs.FlagUsages()
	for _, want := range []string{
		"--n int ", `A "count". (default 4)`, "--d duration ", "(default 1m)", "--s size ", "(default 256MiB)",
		"--b ", "--t string ", `(default "x y")`,
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, usage)
		}
	}
	if strings.Contains(usage, `[="true"]`) || strings.Contains(usage, "--b bool") {
		t.Errorf("a switch shows a value:\n%s", usage)
	}
	if err := fs.Parse([]string{"--b", "--s", "2MiB", "--d", "90s"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"b": "true", "s": "2MiB", "d": "90s"} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	for _, bad := range [][]string{{"--n", "many"}, {"--d", "soon"}, {"--s", "big"}, {"--b=maybe"}} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		addOptionFlags(fs, []plugin.Option{
			{Name: "n", Type: plugin.Int}, {Name: "d", Type: plugin.Duration}, {Name: "s", Type: plugin.Size}, {Name: "b", Type: plugin.Switch},
		})
		err := fs.Parse(bad)
		if err == nil {
			t.Errorf("%v accepted", bad)
			continue
		}
		if msg := flagError(nil, err).Error(); !strings.HasPrefix(msg, strings.SplitN(bad[0], "=", 2)[0]+": ") {
			t.Errorf("%v: error %q does not start with the option's name", bad, msg)
		}
	}
}

// TestOptionDefaultsAreValid: every registered option's default is a
// valid value of its type (a wrong one would fail every run).
func TestOptionDefaultsAreValid(t *testing.T) {
	var opts []plugin.Option
	for _, s := range extractors.All() {
		opts = append(opts, s.Options...)
	}
	opts = append(opts, targetOptions...)
	walk(newRootCommand(), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if v, ok := f.Value.(*optionValue); ok {
				opts = append(opts, v.option)
			}
		})
	})
	for _, o := range opts {
		if err := o.Check(o.Default); err != nil {
			t.Errorf("default of --%s: %v", o.Name, err)
		}
	}
}

// resolved runs command with args through the real tree (flags, --config,
// the root's pre-run) and returns the resolved values of opts instead of
// running the command.
func resolved(t *testing.T, command string, opts []plugin.Option, args ...string) (plugin.Config, result) {
	t.Helper()
	root := newRootCommand()
	cmd, _, err := root.Find([]string{command})
	if err != nil {
		t.Fatal(err)
	}
	var cfg plugin.Config
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var err error
		cfg, err = pluginConfig(cmd.Flags(), opts)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		return nil
	}
	res := runTree(t, root, append([]string{command}, args...)...)
	return cfg, res
}

// registeredOption returns the option named name that some extractor
// declares.
func registeredOption(t *testing.T, name string) plugin.Option {
	t.Helper()
	for _, s := range extractors.All() {
		for _, o := range s.Options {
			if o.Name == name {
				return o
			}
		}
	}
	t.Fatalf("no extractor declares --%s", name)
	return plugin.Option{}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conf.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPrecedence: a flag wins over the --config file, the file over the
// environment (its variables in their order), and the environment over
// the default.
func TestPrecedence(t *testing.T) {
	project := registeredOption(t, "firebase-project")
	if len(project.Env) < 2 {
		t.Fatalf("--firebase-project reads %v; the test wants two variables", project.Env)
	}
	first, second := project.Env[0], project.Env[1]
	opts := []plugin.Option{project, postgresOption, retryTimeout(t)}
	conf := writeConfig(t, "firebase-project: from-file\ntarget-timeout: 3m\npostgres: postgres://file/db\n")
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		project string
		timeout string
		dsn     string
	}{
		{"defaults", nil, nil, "", "2m", ""},
		{"second variable", map[string]string{second: "env-2"}, nil, "env-2", "2m", ""},
		{"first variable first", map[string]string{first: "env-1", second: "env-2", "DATABASE_URL": "postgres://env/db"}, nil, "env-1", "2m", "postgres://env/db"},
		{"file over environment", map[string]string{first: "env-1", "DATABASE_URL": "postgres://env/db"}, []string{"--config", conf}, "from-file", "3m", "postgres://file/db"},
		{"flag over file", map[string]string{first: "env-1"}, []string{"--config", conf, "--firebase-project", "from-flag", "--target-timeout", "4m"}, "from-flag", "4m", "postgres://file/db"},
		{"flag over environment", map[string]string{first: "env-1", "DATABASE_URL": "postgres://env/db"}, []string{"--firebase-project=from-flag", "--postgres", "postgres://flag/db"}, "from-flag", "2m", "postgres://flag/db"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearServiceEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			for _, command := range []string{"migrate", "plan", "verify"} {
				cfg, res := resolved(t, command, opts, c.args...)
				if res.code != 0 {
					t.Fatalf("%s: exit %d\n%s", command, res.code, res.stderr)
				}
				if got := cfg.String("firebase-project"); got != c.project {
					t.Errorf("%s: --firebase-project = %q, want %q", command, got, c.project)
				}
				if got := cfg.String("target-timeout"); got != c.timeout {
					t.Errorf("%s: --target-timeout = %q, want %q", command, got, c.timeout)
				}
				if got := cfg.String("postgres"); got != c.dsn {
					t.Errorf("%s: --postgres = %q, want %q", command, got, c.dsn)
				}
			}
		})
	}
}

func retryTimeout(t *testing.T) plugin.Option {
	for _, o := range targetOptions {
		if o.Name == "target-timeout" {
			return o
		}
	}
	t.Fatal("the target options lack --target-timeout")
	return plugin.Option{}
}

// TestInvalidValueFromEnvironment: a typed option's value from the
// environment is checked too, naming the option and the variable.
func TestInvalidValueFromEnvironment(t *testing.T) {
	clearServiceEnv(t)
	t.Setenv("BAASMIGRATE_TEST_TIMEOUT", "soon")
	opt := plugin.Option{Name: "target-timeout", Type: plugin.Duration, Env: []string{"BAASMIGRATE_TEST_TIMEOUT"}}
	_, res := resolved(t, "migrate", []plugin.Option{opt})
	if res.code != exitError || !strings.Contains(res.stderr, `--target-timeout: "soon" is not a positive duration`) || !strings.Contains(res.stderr, "$BAASMIGRATE_TEST_TIMEOUT") {
		t.Errorf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
}

func TestConfigFileErrors(t *testing.T) {
	clearServiceEnv(t)
	cases := []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "workers: 2\nwokers: 3\n", []string{`conf.yaml:2: unknown setting "wokers"`}},
		{"bad YAML", "workers: 2\nonly documents\nbatch-size: 3\n", []string{"conf.yaml:2: could not find expected ':'"}},
		{"not a mapping", "- workers\n", []string{"conf.yaml:1: want a mapping"}},
		{"invalid typed value", "workers: 2\nsource-timeout: soon\n", []string{`conf.yaml:2: --source-timeout: "soon" is not a positive duration`}},
		{"invalid plain flag", "workers: many\n", []string{`conf.yaml:1: `, `"--workers"`}},
		{"a nested value", "only:\n  documents: yes\n", []string{"conf.yaml:2: only: want a value or a list of values"}},
		{"every problem at once", "wokers: 3\nsource-timeout: soon\n", []string{`conf.yaml:1: unknown setting "wokers"`, `conf.yaml:2: --source-timeout`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := writeConfig(t, c.text)
			res := run(t, "migrate", "--config", conf)
			if res.code != exitError {
				t.Errorf("exit %d, want 2\n%s", res.code, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
				}
			}
		})
	}
	// A setting of another command's flag is not an error, and a missing
	// file is.
	conf := writeConfig(t, "uid: someone\nworkers: 2\n")
	if _, res := resolved(t, "migrate", nil, "--config", conf); res.code != 0 {
		t.Errorf("a setting for another command: exit %d\n%s", res.code, res.stderr)
	}
	if res := run(t, "migrate", "--config", filepath.Join(t.TempDir(), "missing.yaml")); res.code != exitError || !strings.Contains(res.stderr, "reading the config file") {
		t.Errorf("a missing config file: exit %d\n%s", res.code, res.stderr)
	}
}

// TestUsageErrorsExitTwo: what the user typed wrong exits 2 with a
// message, before anything is read or written.
func TestUsageErrorsExitTwo(t *testing.T) {
	clearServiceEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"migrate", "extra"}, `unknown command "extra"`},
		{[]string{"no-such-command"}, `unknown command "no-such-command"`},
		{[]string{"migrate", "--only", "documents,widgets"}, `--only: unknown kind "widgets"`},
		{[]string{"plan", "--only", "widgets"}, `--only: unknown kind "widgets"`},
		{[]string{"verify", "--only", "widgets"}, `--only: unknown kind "widgets"`},
		{[]string{"migrate", "--workers", "0"}, "--workers must be at least 1 and --batch-size at least 1 (or 0: the default per kind)"},
		{[]string{"migrate", "--batch-size", "-1"}, "--workers must be at least 1 and --batch-size at least 1 (or 0: the default per kind)"},
		{[]string{"migrate", "--batch-bytes", "0"}, `--batch-bytes: "0" is not a size like 256MiB`},
		{[]string{"migrate", "--workers", "four"}, `invalid argument "four" for "--workers"`},
		{[]string{"migrate", "--source-timeout", "soon"}, `--source-timeout: "soon" is not a positive duration`},
		{[]string{"verify", "--target-timeout", "-1h"}, `--target-timeout: "-1h" is not a positive duration`},
		{[]string{"migrate", "--retry-attempts", "3.5"}, `--retry-attempts: "3.5" is not a whole number`},
		{[]string{"migrate", "--share-target=maybe"}, `--share-target: "maybe" is not true or false`},
		{[]string{"verify", "--format", "xml"}, `--format: "xml" is not table, json or html`},
		{[]string{"plan", "--format", "html"}, "--format html needs --out FILE"},
		{[]string{"migrate", "--only", "documents"}, "no target database: pass --postgres or set DATABASE_URL"},
		{[]string{"verify", "--only", "documents"}, "no target database: pass --postgres or set DATABASE_URL"},
	}
	for _, c := range cases {
		res := run(t, c.args...)
		if res.code != exitError || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 saying %q; stderr:\n%s", c.args, res.code, c.want, res.stderr)
		}
		if n := strings.Count(res.stderr, c.want); n > 1 {
			t.Errorf("%v: the error is printed %d times:\n%s", c.args, n, res.stderr)
		}
	}
}

// TestMigrateSummaryOnError: a migrate that fails before reading writes
// its summary anyway, with exit status 2, the error and the next step.
func TestMigrateSummaryOnError(t *testing.T) {
	clearServiceEnv(t)
	path := filepath.Join(t.TempDir(), "summary.json")
	res := run(t, "migrate", "--only", "users,documents", "--summary", path)
	if res.code != exitError {
		t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
	}
	sum := readSummary(t, path)
	if sum.ExitStatus != exitError || !strings.Contains(sum.Error, "no target database") || sum.NextStep == "" || sum.Interrupted {
		t.Errorf("summary %+v", sum)
	}
	if len(sum.Jobs) != 2 || sum.Jobs[0].Status != statusNotStarted || sum.Jobs[1].Status != statusNotStarted {
		t.Errorf("jobs %+v, want two not started (documents, users)", sum.Jobs)
	}
	if !strings.Contains(res.stdout, "failed: no target database") || !strings.Contains(res.stdout, "next: ") {
		t.Errorf("the printed summary does not say what failed and what next:\n%s", res.stdout)
	}
}

func TestExitCode(t *testing.T) {
	plain := errors.New("plain")
	cases := []struct {
		err         error
		interrupted bool
		want        int
		says        string
	}{
		{nil, false, exitOK, ""},
		{plain, false, exitError, "baasmigrate: plain\n"},
		{&exitStatus{code: exitProblems}, false, exitProblems, ""},
		{&exitStatus{code: exitProblems, err: plain}, false, exitProblems, "baasmigrate: plain\n"},
		{fmt.Errorf("wrapped: %w", &exitStatus{code: exitProblems, err: plain}), false, exitProblems, "baasmigrate: plain\n"},
		{&exitStatus{code: exitError, err: plain}, false, exitError, "baasmigrate: plain\n"},
		// After an interrupt, a failure is the interrupt's doing...
		{plain, true, exitInterrupted, "baasmigrate: " + interruptedMessage + "\n"},
		{&exitStatus{code: exitError, err: context.Canceled}, true, exitInterrupted, "baasmigrate: " + interruptedMessage + "\n"},
		// ...but a result the command chose stands.
		{&exitStatus{code: exitProblems, err: plain}, true, exitProblems, "baasmigrate: plain\n"},
		{&exitStatus{code: exitInterrupted, err: errors.New(interruptedMessage)}, true, exitInterrupted, "baasmigrate: " + interruptedMessage + "\n"},
	}
	for _, c := range cases {
		var w bytes.Buffer
		if got := exitCode(&w, c.err, c.interrupted); got != c.want || w.String() != c.says {
			t.Errorf("exitCode(%v, interrupted %v) = %d saying %q; want %d saying %q", c.err, c.interrupted, got, w.String(), c.want, c.says)
		}
	}
}

// TestWorkContext: the work context outlives the first interrupt (the
// stop context) and carries the command context's values.
func TestWorkContext(t *testing.T) {
	in := &interrupts{}
	in.work, in.cancelWork = context.WithCancel(context.Background())
	in.stop, in.cancelStop = context.WithCancel(in.work)
	defer in.cancelWork()
	type key struct{}
	ctx := context.WithValue(in.context(), key{}, "value")
	work := workContext(ctx)
	in.cancelStop()
	if ctx.Err() == nil {
		t.Fatal("the command context outlived the first interrupt")
	}
	if work.Err() != nil {
		t.Fatal("the work context ended at the first interrupt")
	}
	if work.Value(key{}) != "value" {
		t.Error("the work context lost the command context's values")
	}
	in.cancelWork()
	if work.Err() == nil {
		t.Error("the work context outlived the second interrupt")
	}
	plain := context.Background()
	if workContext(plain) != plain {
		t.Error("outside main the work context is not the context itself")
	}
}

// TestSourcesShowsOptionTypes: `sources` names each option's type as
// --help does, quoting only string defaults, in text and in JSON.
func TestSourcesShowsOptionTypes(t *testing.T) {
	res := run(t, "sources")
	for _, want := range []string{"--auth-page-size int (default 1000)", `--auth-export-format string (default "auto")`, "--firestore-snapshot-window duration (default 1h)"} {
		if res.code != 0 || !strings.Contains(res.stdout, want) {
			t.Fatalf("sources: exit %d, output lacks %q:\n%s", res.code, want, res.stdout)
		}
	}
	res = run(t, "sources", "--format", "json")
	var l sourceList
	if err := json.Unmarshal([]byte(res.stdout), &l); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, s := range l.Sources {
		for _, k := range s.Kinds {
			for _, o := range k.Options {
				types[o.Name] = o.Type
			}
		}
	}
	if types["auth-page-size"] != "int" || types["firestore-snapshot-window"] != "duration" || types["firebase-project"] != "string" {
		t.Fatalf("types %v", types)
	}
}
