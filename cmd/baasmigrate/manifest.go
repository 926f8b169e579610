package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/erasure"
	"github.com/baasmigrate/baasmigrate/internal/manifest"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

func init() {
	extraCommands = append(extraCommands, newManifestCommand)
}

// excludeConfigKey is the run setting that holds the erasure list's
// SHA-256: a run resumes (or counts as done) only with the same list.
const excludeConfigKey = "exclude-from-sha256"

// addExcludeFlag adds --exclude-from (migrate, sync, plan, verify,
// cutover).
func addExcludeFlag(f *pflag.FlagSet) {
	f.String("exclude-from", "", "Erasure list: records never to move (one per line: user:UID, doc:PATH, file:NAME, row:KEY; see docs/compliance.md)")
}

// loadExclusions reads --exclude-from; nil when it is not given. Only the
// list's size and digest are ever logged.
func loadExclusions(cmd *cobra.Command) (*erasure.List, error) {
	path, _ := cmd.Flags().GetString("exclude-from")
	if path == "" {
		return nil, nil
	}
	l, err := erasure.Load(path)
	if err != nil {
		return nil, &exitStatus{code: exitError, err: fmt.Errorf("--exclude-from: %w", err)}
	}
	newLogger(cmd).Info("erasure list loaded", "entries", l.Len(), "sha256", l.Digest())
	return l, nil
}

// addManifestFlags adds --manifest and --manifest-key (migrate, verify).
func addManifestFlags(f *pflag.FlagSet) {
	f.String("manifest", "", "Write an audit manifest (JSON) to this `file`, and store it in the state schema (docs/compliance.md)")
	f.String("manifest-key", "", "Sign the manifest with this ed25519 private key `file` (PEM PKCS#8, or a 32-byte seed raw, hex or base64)")
}

// manifestRequest is what --manifest and --manifest-key asked for.
type manifestRequest struct {
	path string
	key  ed25519.PrivateKey
}

// readManifestFlags loads the key at once, so a bad key stops the command
// before it does anything. nil when no manifest is asked for.
func readManifestFlags(cmd *cobra.Command) (*manifestRequest, error) {
	f := cmd.Flags()
	path, _ := f.GetString("manifest")
	keyPath, _ := f.GetString("manifest-key")
	if path == "" {
		if keyPath != "" {
			return nil, &exitStatus{code: exitError, err: errors.New("--manifest-key needs --manifest")}
		}
		return nil, nil
	}
	r := &manifestRequest{path: path}
	if keyPath != "" {
		k, err := manifest.LoadPrivateKey(keyPath)
		if err != nil {
			return nil, &exitStatus{code: exitError, err: err}
		}
		r.key = k
	}
	return r, nil
}

// describeTarget names the target database without its password:
// postgres://user@host:port/database.
func describeTarget(dsn string) string {
	pc, err := postgres.ParseConnString(dsn)
	if err != nil {
		return "(a connection string that does not parse)"
	}
	cc := pc.ConnConfig
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), Path: "/" + cc.Database}
	if cc.User != "" {
		u.User = url.User(cc.User)
	}
	return u.String()
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// manifestJob describes one migrate job for the manifest.
func manifestJob(js jobSummary, res *migration.Result, config map[string]string) manifest.Job {
	j := manifest.Job{Kind: js.Kind, Name: js.Job, Run: js.Run, Status: js.Status, Tables: []manifest.TableCount{}}
	if config != nil {
		b, _ := json.Marshal(config) // map keys sorted
		j.SettingsSHA256 = sha256Hex(b)
		if m, ok := config["mapping"]; ok {
			j.MappingSHA256 = sha256Hex([]byte(m))
		}
	}
	if res != nil && res.Run != nil {
		for _, st := range res.Run.Streams {
			j.ReadTimes = append(j.ReadTimes, manifest.ReadTime{Stream: st.Name, ReadTime: st.ReadTime.UTC(), FirstReadTime: st.FirstReadTime.UTC()})
		}
	}
	for _, t := range js.Tables {
		j.Tables = append(j.Tables, manifest.TableCount{Table: t.Table, Read: t.Read, Loaded: t.Loaded, Rejected: t.Rejected, Excluded: t.Excluded})
	}
	return j
}

// mappingTransforms lists the field transforms a job's mapping (its
// settings' "mapping") declares, sorted by table and field; nil without
// one.
func mappingTransforms(config map[string]string) ([]manifest.Transform, error) {
	text, ok := config["mapping"]
	if !ok {
		return nil, nil
	}
	m, err := mappings.Parse([]byte(text), "(the run's mapping)")
	if err != nil {
		return nil, fmt.Errorf("listing the mapping's transforms for the manifest: %w", err)
	}
	var out []manifest.Transform
	for table, fields := range pii.Applied(m) {
		for field, what := range fields {
			out = append(out, manifest.Transform{Table: table, Field: field, Transform: what})
		}
	}
	slices.SortFunc(out, func(a, b manifest.Transform) int {
		return cmp.Or(strings.Compare(a.Table, b.Table), strings.Compare(a.Field, b.Field))
	})
	return out, nil
}

// verifyResult turns verify's reports into the manifest's record of them.
func verifyResult(doc *diff.Document) *manifest.VerifyResult {
	v := &manifest.VerifyResult{Identical: doc.Identical, Tables: []manifest.VerifyTable{}}
	for _, k := range doc.Kinds {
		if k.Report == nil {
			continue
		}
		for _, t := range k.Tables {
			v.Tables = append(v.Tables, manifest.VerifyTable{Kind: k.Kind, Table: t.Table, Source: t.Source, Matching: t.Matching,
				Mismatched: t.Mismatched, MissingInTarget: t.MissingInTarget, ExtraInTarget: t.ExtraInTarget, Rejected: t.Rejected,
				Excluded: t.Excluded, ExcludedInTarget: t.ExcludedInTarget})
		}
	}
	return v
}

// writeManifest completes m with the target's content digest, signs it
// when a key was given, refuses to write it should it hold one of secrets,
// writes it to req.path and stores it in the state schema.
func writeManifest(ctx context.Context, req *manifestRequest, m *manifest.Manifest, pool *pgxpool.Pool, state *postgres.State, secrets []string) error {
	content, err := manifest.Digest(ctx, pool)
	if err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	m.Content = content
	if m.Transforms == nil {
		m.Transforms = []manifest.Transform{}
	}
	m.Ended = time.Now().UTC()
	data, err := manifest.Sign(m, req.key)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		if len(s) >= 4 && bytes.Contains(data, []byte(s)) {
			return errors.New("writing the manifest: it would hold a secret (a password or key of the options); not written")
		}
	}
	if err := os.WriteFile(req.path, data, 0o644); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	if state != nil {
		if _, err := state.StoreManifest(ctx, m.Command, sha256Hex(data), req.key != nil, data); err != nil {
			return err
		}
	}
	return nil
}

func newManifestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Audit manifests: check one against its signature and the target",
		Args:  cobra.NoArgs,
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check a manifest's signature and recompute its digests from the target; exit 0 match, 1 mismatch, 2 error",
		Long: `manifest verify checks an audit manifest written by migrate --manifest or
verify --manifest: that it is byte for byte as written, that its ed25519
signature holds (against --public-key when given; else against the public key
the manifest carries, which proves it unaltered since signing but not who
signed it), and that the target's content digest, recomputed now, equals the
manifest's, table by table. Every table that differs is named.

Exit status: 0 match; 1 mismatch (signature, or a table's rows or content);
2 error.`,
		Args: cobra.NoArgs,
		RunE: runManifestVerify,
	}
	f := verify.Flags()
	addOptionFlags(f, targetOptions)
	f.String("manifest", "", "The manifest `file` to check (required)")
	f.String("public-key", "", "The signer's ed25519 public key `file` (PEM, or 32 bytes raw, hex or base64)")
	f.Bool("unsigned", false, "Accept a manifest without a signature (its digests are still checked)")
	cmd.AddCommand(verify)
	return cmd
}

func runManifestVerify(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	path, _ := f.GetString("manifest")
	pubPath, _ := f.GetString("public-key")
	unsigned, _ := f.GetBool("unsigned")
	if path == "" {
		return &exitStatus{code: exitError, err: errors.New("--manifest FILE is required")}
	}
	var pub ed25519.PublicKey
	if pubPath != "" {
		var err error
		if pub, err = manifest.LoadPublicKey(pubPath); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return &exitStatus{code: exitError, err: fmt.Errorf("reading the manifest: %w", err)}
	}
	out := cmd.OutOrStdout()
	m, err := manifest.Parse(data)
	if errors.Is(err, manifest.ErrNotCanonical) {
		fmt.Fprintln(out, "signature: FAILED:", err)
		return &exitStatus{code: exitProblems, err: fmt.Errorf("manifest %s: %w", path, err)}
	}
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	var problems []string
	switch by, err := manifest.CheckSignature(m, pub); {
	case errors.Is(err, manifest.ErrUnsigned) && unsigned && pub == nil:
		fmt.Fprintln(out, "signature: none (accepted: --unsigned)")
	case err != nil:
		fmt.Fprintln(out, "signature: FAILED:", err)
		problems = append(problems, err.Error())
	case pub != nil:
		fmt.Fprintf(out, "signature: valid, by the public key given (ed25519 %s)\n", hex.EncodeToString(by))
	default:
		fmt.Fprintf(out, "signature: valid, by the key the manifest carries (ed25519 %s); pass --public-key to check who signed it\n", hex.EncodeToString(by))
	}
	if m.Content.Method != manifest.Method {
		return &exitStatus{code: exitError, err: fmt.Errorf("the manifest's content digest method %q is not %q, the one this version computes", m.Content.Method, manifest.Method)}
	}
	target, err := pluginConfig(f, targetOptions)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	timeout, err := retry.Timeout(target, retry.TargetTimeoutOption)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, err := connectTarget(ctx, target.String("postgres"), 1, timeout)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	now, err := manifest.Digest(ctx, pool)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	diffs := manifest.Compare(m.Content, now)
	for _, d := range diffs {
		fmt.Fprintf(out, "table %s.%s: %s\n", d.Schema, d.Table, d.What)
		problems = append(problems, fmt.Sprintf("%s.%s", d.Schema, d.Table))
	}
	if len(diffs) == 0 {
		fmt.Fprintf(out, "content: %d table(s) match the manifest (sha256 %s)\n", len(now.Tables), now.SHA256)
	}
	if len(problems) > 0 {
		return &exitStatus{code: exitProblems, err: fmt.Errorf("the manifest does not match: %d problem(s)", len(problems))}
	}
	return nil
}
