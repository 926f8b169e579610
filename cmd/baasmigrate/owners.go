package main

import (
	"fmt"
	"strconv"
	"strings"

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
	share := false
	if v := cfg.String(shareTablesOption.Name); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return postgres.Owner{}, fmt.Errorf("--%s: %q is not true or false", shareTablesOption.Name, v)
		}
		share = b
	}
	owner, _, _ := strings.Cut(source, "?")
	if rest, ok := strings.CutPrefix(owner, "gcs:gs://"); ok {
		bucket, _, _ := strings.Cut(rest, "/")
		owner = "gcs:gs://" + bucket
	}
	return postgres.Owner{Source: owner, Share: share}, nil
}
