package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/internal/kratosimport"
)

// kratosTokenEnv names the environment variable --token defaults to.
const kratosTokenEnv = "KRATOS_ADMIN_TOKEN"

func newAuthImportKratosCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import-kratos --url ADMIN_URL --in FILE",
		Short: "Create the identities of an `auth export --format kratos` file in Ory Kratos, in batches, resumably",
		Long: `import-kratos sends the identities of an export file (auth export --format kratos) to Ory
Kratos' admin API, PATCH /admin/identities, in batches of --batch-size create operations
(1000 by default: Kratos v25.4 and later take at most 1000 a request, v1.3 at most 2000),
and writes each identity's result to the report (--report, JSON Lines): created (with the
Kratos identity id), present (Kratos already held it: found by its e-mail, phone, OIDC
subject or external_id and the same metadata_admin.firebase_uid), or refused (with
Kratos' status and reason). A summary goes to stderr.

The report is also the journal: it is fsynced after each batch Kratos answered, and a
run with the same --in and --report sends only the lines without a created or present
result — so after an interruption (Ctrl-C, kill -9, a lost connection) run the same
command again; an identity Kratos created before the interruption comes back as 409 and
is recorded as present, never created twice. Refused lines are sent again on every run.
A report belongs to one input file and one Kratos URL; another is refused.

A batch Kratos refuses as a whole (one malformed identity, an external_id its column
cannot hold) is split until the identity at fault is refused alone. Connection errors,
429, 502, 503 and 504 are retried with backoff (about 45 s), then the run stops; run it
again to resume.

--token (default: $KRATOS_ADMIN_TOKEN) is sent as a bearer token, as Ory Network's admin
API wants. Hashes, request bodies and the token are never printed.

Exit status: 0 every identity is created or present, 1 some were refused (see the
report), 2 the import could not run or stopped early, 3 interrupted.`,
		Args: cobra.NoArgs,
		RunE: runAuthImportKratos,
	}
	f := cmd.Flags()
	f.String("url", "", "Kratos' admin `url` (e.g. http://127.0.0.1:4434, or https://<project>.projects.oryapis.com)")
	f.String("in", "", "The export `file` (auth export --format kratos)")
	f.String("report", "", "The report and journal `file` (JSON Lines; default: the input's name + .report.jsonl)")
	f.Int("batch-size", kratosimport.DefaultBatchSize, fmt.Sprintf("Identities per request (1 to %d)", kratosimport.MaxBatchSize))
	f.String("token", "", "Admin API `token`, sent as a bearer token (default: $"+kratosTokenEnv+")")
	return cmd
}

func runAuthImportKratos(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	url, _ := f.GetString("url")
	in, _ := f.GetString("in")
	report, _ := f.GetString("report")
	size, _ := f.GetInt("batch-size")
	token, _ := f.GetString("token")
	if token == "" {
		token = os.Getenv(kratosTokenEnv)
	}
	if url == "" || in == "" {
		return &exitStatus{code: exitError, err: errors.New("--url and --in are required")}
	}
	if report == "" {
		report = in + ".report.jsonl"
	}
	stderr := cmd.ErrOrStderr()
	sum, err := kratosimport.Import(cmd.Context(), in, report, kratosimport.Options{
		URL: url, Token: token, BatchSize: size, Progress: stderr,
	})
	fmt.Fprintf(stderr, "kratos import: %d identities in %s; this run: %d created, %d already present, %d refused\n",
		sum.Lines, in, sum.Run.Created, sum.Run.Present, sum.Run.Refused)
	fmt.Fprintf(stderr, "kratos import: in all: %d created, %d already present, %d refused, %d not yet sent (report: %s)\n",
		sum.Total.Created, sum.Total.Present, sum.Total.Refused, sum.Missing, report)
	for i, e := range sum.Refused {
		if i == 20 {
			fmt.Fprintf(stderr, "  … and %d more refused: see the report\n", len(sum.Refused)-20)
			break
		}
		who := e.FirebaseUID
		if who == "" {
			who = "(no firebase_uid)"
		}
		fmt.Fprintf(stderr, "  refused: line %d, uid %s: %d %s\n", e.Line, who, e.Status, e.Reason)
	}
	switch {
	case errors.Is(err, kratosimport.ErrUnavailable):
		return &exitStatus{code: exitError, err: fmt.Errorf("importing into Kratos: %w; run the same command again to resume", err)}
	case err != nil:
		return &exitStatus{code: exitError, err: fmt.Errorf("importing into Kratos: %w", err)}
	}
	if sum.Total.Refused > 0 {
		return &exitStatus{code: exitProblems}
	}
	return nil
}
