package plugin

import (
	"strings"
	"testing"
	"time"
)

func TestCheckByType(t *testing.T) {
	cases := []struct {
		typ   Type
		value string
		want  string // "" valid, else a substring of the error
	}{
		{String, "anything `at` all", ""},
		{Int, "12", ""},
		{Int, "-3", ""},
		{Int, "1.5", `"1.5" is not a whole number`},
		{Duration, "250ms", ""},
		{Duration, "0", ""},
		{Duration, "1h30m", ""},
		{Duration, "soon", `"soon" is not a positive duration`},
		{Duration, "-1s", `"-1s" is not a positive duration`},
		{Size, "256MiB", ""},
		{Size, "5 MiB", ""},
		{Size, "1000", ""},
		{Size, "0", `"0" is not a size like 256MiB`},
		{Size, "1.5GiB", `is not a size`},
		{Size, "99999999999GiB", `is not a size`}, // overflows int64
		{Switch, "true", ""},
		{Switch, "0", ""},
		{Switch, "maybe", `"maybe" is not true or false`},
	}
	for _, c := range cases {
		o := Option{Name: "opt", Type: c.typ}
		err := o.Check(c.value)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("type %v, %q: unexpected error %v", c.typ, c.value, err)
		case c.want != "" && err == nil:
			t.Errorf("type %v, %q: accepted, want an error", c.typ, c.value)
		case c.want != "" && (!strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "--opt: ")):
			t.Errorf("type %v, %q: error %q, want it to start with --opt: and say %q", c.typ, c.value, err, c.want)
		}
	}
	if err := (Option{Name: "x", Type: Int}).Check(""); err != nil {
		t.Errorf("an unset value is always valid, got %v", err)
	}
}

func TestValueNames(t *testing.T) {
	want := map[Type]string{String: "string", Int: "int", Duration: "duration", Size: "size", Switch: ""}
	for typ, name := range want {
		if got := typ.ValueName(); got != name {
			t.Errorf("%d.ValueName() = %q, want %q", typ, got, name)
		}
	}
}

func TestConfigReaders(t *testing.T) {
	c := Config{"d": "1m30s", "s": "2MiB", "k": "3KB", "b": "true", "i": "7", "bad": "x"}
	if d, err := c.Duration("d"); err != nil || d != 90*time.Second {
		t.Errorf("Duration(d) = %v, %v", d, err)
	}
	if d, err := c.Duration("unset"); err != nil || d != 0 {
		t.Errorf("Duration(unset) = %v, %v; want 0, nil", d, err)
	}
	if n, err := c.Size("s"); err != nil || n != 2<<20 {
		t.Errorf("Size(s) = %v, %v", n, err)
	}
	if n, err := c.Size("k"); err != nil || n != 3000 {
		t.Errorf("Size(k) = %v, %v", n, err)
	}
	if n, err := c.Size("unset"); err != nil || n != 0 {
		t.Errorf("Size(unset) = %v, %v; want 0, nil", n, err)
	}
	if b, err := c.Bool("b"); err != nil || !b {
		t.Errorf("Bool(b) = %v, %v", b, err)
	}
	if n, err := c.Int("i", 1); err != nil || n != 7 {
		t.Errorf("Int(i) = %v, %v", n, err)
	}
	if n, err := c.Int("unset", 4); err != nil || n != 4 {
		t.Errorf("Int(unset, 4) = %v, %v", n, err)
	}
	for name, read := range map[string]func() error{
		"Duration": func() error { _, err := c.Duration("bad"); return err },
		"Size":     func() error { _, err := c.Size("bad"); return err },
		"Bool":     func() error { _, err := c.Bool("bad"); return err },
		"Int":      func() error { _, err := c.Int("bad", 0); return err },
	} {
		if err := read(); err == nil || !strings.Contains(err.Error(), "--bad") {
			t.Errorf("%s(bad): error %v, want one naming --bad", name, err)
		}
	}
}

func TestResolvePrecedence(t *testing.T) {
	opts := []Option{
		{Name: "a", Env: []string{"A1", "A2"}, Default: "def"},
		{Name: "b", Env: []string{"B"}, Default: "def"},
		{Name: "c", Env: []string{"C"}, Default: "def"},
		{Name: "d", Default: "def"},
		{Name: "e"},
	}
	setValues := map[string]string{"a": "flag"}
	env := map[string]string{"A1": "env-a1", "B": "", "C": "env-c", "A2": "env-a2"}
	set := func(name string) (string, bool) { v, ok := setValues[name]; return v, ok }
	cfg, err := Resolve(opts, set, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{"a": "flag", "b": "def", "c": "env-c", "d": "def"}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if _, ok := cfg["e"]; ok && cfg["e"] != "" {
		t.Errorf("e = %q, want unset", cfg["e"])
	}
	// The first non-empty variable wins.
	delete(setValues, "a")
	cfg, _ = Resolve(opts, set, func(k string) string { return env[k] })
	if cfg["a"] != "env-a1" {
		t.Errorf("a = %q, want the first variable's env-a1", cfg["a"])
	}
	// A value set explicitly wins even when empty: --name "" clears it.
	setValues["d"] = ""
	cfg, _ = Resolve(opts, set, func(k string) string { return env[k] })
	if cfg["d"] != "" {
		t.Errorf("d = %q, want the explicit empty value", cfg["d"])
	}
}

func TestResolveChecksTypes(t *testing.T) {
	opts := []Option{
		{Name: "timeout", Type: Duration, Env: []string{"T"}},
		{Name: "count", Type: Int},
		{Name: "fine", Type: Size, Default: "1MiB"},
	}
	_, err := Resolve(opts,
		func(name string) (string, bool) { return map[string]string{"count": "many"}[name], name == "count" },
		func(k string) string { return map[string]string{"T": "later"}[k] })
	if err == nil {
		t.Fatal("invalid values accepted")
	}
	for _, want := range []string{`--timeout: "later" is not a positive duration`, "(from $T)", `--count: "many" is not a whole number`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "--fine") {
		t.Errorf("error %q names a valid option", err)
	}
}

func TestMergeRefusesTypeDisagreement(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Merge accepted one option declared with two types")
		}
	}()
	Merge([]Option{{Name: "n", Help: "h", Type: Int}}, []Option{{Name: "n", Help: "h"}})
}
