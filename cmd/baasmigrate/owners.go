package main

import (
	"github.com/spf13/pflag"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// shareTablesOption lets a job write into a target (PostgreSQL tables, a
// bucket or a directory) that another source's job created or writes into.
var shareTablesOption = plugin.Option{
	Name: "share-target",
	Help: "Write into target tables, a bucket or a directory that another source's migration wrote (both sources' records then share them, and a key both have is written by the later run). " +
		"Without it, such a job stops before writing anything and names the target and the other source.",
	Type: plugin.Switch,
}

// tableOwner is the owner a job's sink claims its tables for: the whole
// source the job reads part of (extractors.WholeSource), so that jobs
// reading parts of one source share its tables and jobs of another source
// are refused.
func tableOwner(cfg plugin.Config, ex extractors.Extractor) (postgres.Owner, error) {
	share, err := cfg.Bool(shareTablesOption.Name)
	if err != nil {
		return postgres.Owner{}, err
	}
	return postgres.Owner{Source: extractors.WholeSource(ex), Share: share}, nil
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
