package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// shareTablesOption lets a job write target tables another source owns.
var shareTablesOption = plugin.Option{
	Name: "share-target-tables",
	Help: "Write target tables even when another source's migration created them (both sources' rows then share the tables, and a key both have is overwritten by the later run). " +
		"Without it, such a job stops before writing anything and names the tables and the other source.",
	Default: "false",
}

// tableOwner is the owner a job's sink claims its tables for: the job's
// source with what only narrows a job within it taken off (Firestore's
// ?collections=, a Cloud Storage prefix), so that jobs reading parts of
// one source share its tables and jobs of another source are refused.
func tableOwner(cfg plugin.Config, source string) (postgres.Owner, error) {
	share, err := shareTables(cfg)
	if err != nil {
		return postgres.Owner{}, err
	}
	owner, _, _ := strings.Cut(source, "?")
	if rest, ok := strings.CutPrefix(owner, "gcs:gs://"); ok {
		bucket, _, _ := strings.Cut(rest, "/")
		owner = "gcs:gs://" + bucket
	}
	return postgres.Owner{Source: owner, Share: share}, nil
}

// shareTables reads --share-target-tables.
func shareTables(cfg plugin.Config) (bool, error) {
	v := cfg.String(shareTablesOption.Name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("--%s: %q is not true or false", shareTablesOption.Name, v)
	}
	return b, nil
}

// optionGiven reports, for buildEnv.Given, whether the user set an option
// on the command line or in the --config file, rather than leaving it to
// the environment or its default.
func optionGiven(fs *pflag.FlagSet) func(name string) bool {
	return func(name string) bool {
		f := fs.Lookup(name)
		return f != nil && f.Changed
	}
}
