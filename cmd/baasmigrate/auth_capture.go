package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/passwords/capture"
)

func newCaptureStatusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "capture-status",
		Short: "Count migrated users whose password has been captured at first sign-in (sources without hashes: Cognito)",
		Long: `capture-status reports, for a users schema loaded from a source that exports no password
hashes (Cognito: the credential NONE), how many users have had their password captured at
their first sign-in to the new backend (passwords/capture) and how many have not yet.
Captures are kept in <schema>.password_captures; the users rows keep NONE, as Cognito
has it, so migrate, sync, verify and cutover are not disturbed. --create creates the
table (for an application whose own database role may not create tables). --apply,
once the pool is no longer migrated or synced (after the cutover), writes the captured
credentials into the users rows; a later migrate or sync would set them back to NONE.
Without --users-schema it reads the schema the target's users runs wrote to (as
auth verify-password does: Cognito's default is cognito_users). Nothing secret is shown.

Exit status: 0 reported, 2 the report could not be made.`,
		Args: cobra.NoArgs,
		RunE: runCaptureStatus,
	}
	f := cmd.Flags()
	f.Bool("create", false, "Create <schema>.password_captures if it does not exist")
	f.Bool("apply", false, "Write captured credentials into the users rows (after the cutover: a later migrate or sync sets them back to NONE)")
	f.String("format", "text", "text or json")
	addOptionFlags(f, []plugin.Option{postgresOption, usersSchemaOption})
	return cmd
}

func runCaptureStatus(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	create, _ := f.GetBool("create")
	apply, _ := f.GetBool("apply")
	format, _ := f.GetString("format")
	if format != "text" && format != "json" {
		return &exitStatus{code: exitError, err: fmt.Errorf("--format %q: want text or json", format)}
	}
	cfg, err := pluginConfig(f, []plugin.Option{postgresOption, usersSchemaOption})
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, schema, err := connectUsersTarget(ctx, f, cfg)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	if create {
		if err := capture.EnsureTable(ctx, pool, schema); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
	}
	var applied int64
	if apply {
		if applied, err = capture.Apply(ctx, pool, schema); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
	}
	c, err := capture.Status(ctx, pool, schema)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	out := cmd.OutOrStdout()
	if format == "json" {
		v := map[string]any{"schema": schema, "captured": c.Captured, "applied": c.Applied, "uncaptured": c.Uncaptured}
		if apply {
			v["applied_now"] = applied
		}
		if !c.Since.IsZero() {
			v["first_capture"], v["last_capture"] = c.Since.UTC().Format(time.RFC3339), c.Last.UTC().Format(time.RFC3339)
		}
		b, _ := json.Marshal(v)
		fmt.Fprintln(out, string(b))
	} else {
		total := c.Captured + c.Uncaptured
		pct := 0.0
		if total > 0 {
			pct = 100 * float64(c.Captured) / float64(total)
		}
		fmt.Fprintf(out, "%s: %d of %d users without an exported hash captured (%.1f%%), %d not yet\n", schema, c.Captured, total, pct, c.Uncaptured)
		if !c.Since.IsZero() {
			fmt.Fprintf(out, "first capture %s, latest %s\n", c.Since.UTC().Format(time.RFC3339), c.Last.UTC().Format(time.RFC3339))
		}
		if apply {
			fmt.Fprintf(out, "%d captured credentials written into the users rows now\n", applied)
		}
		fmt.Fprintf(out, "%d of the captured credentials are in the users rows (--apply)\n", c.Applied)
	}
	return nil
}
