// Command cognito benchmarks `baasmigrate migrate --source amplify --only
// users` (a Cognito user pool → PostgreSQL) against an extract-only
// baseline measured in the same run on the same machine: the Cognito
// extractor listing every user (groups and MFA settings included) and
// discarding them. Both go through the tool's own pacing
// (--cognito-list-rps, --cognito-read-rps; see extractors/cognito), so the
// program also counts the requests of each Cognito quota category the
// reading sent, says which category bounds the run, and what rate that
// implies against real Cognito's documented default quotas.
//
// It seeds its own pool in cognito-local (COGNITO_ENDPOINT): users with
// standard and custom attributes, three statuses, groups, and SMS MFA for
// some. cognito-local ignores Limit and PaginationToken, so every request
// goes through internal/cognitotest's paging front, which pages as Cognito
// does (60 users a page). Two pool settings are measured: MFA OPTIONAL
// (the extractor reads each user's MFA settings with AdminGetUser, in the
// UserRead category) and MFA OFF (ListUsers pages only, UserList). Run it
// with the local stack up: `make services-up && go run ./bench/cognito`.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/cognito"
	"github.com/baasmigrate/baasmigrate/internal/benchreport"
	"github.com/baasmigrate/baasmigrate/internal/cognitotest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/procstat"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Cognito's documented default request rate quotas (per account and
// region, shared with the app) of the categories the extractor uses.
const (
	quotaUserList = 30  // ListUsers, ListUsersInGroup, ListGroups: --cognito-list-rps
	quotaUserRead = 120 // AdminGetUser: --cognito-read-rps
)

func main() {
	var o options
	flag.IntVar(&o.users, "users", 2000, "Users of the benchmark pool")
	flag.IntVar(&o.mfaEvery, "mfa-every", 10, "Every Nth user gets SMS MFA (enabled, preferred)")
	flag.IntVar(&o.runs, "runs", 3, "Rounds of (extract only, migrate) per pool setting; the median round is reported")
	flag.IntVar(&o.listRPS, "list-rps", 0, "--cognito-list-rps for both measurements (0: the tool's default)")
	flag.IntVar(&o.readRPS, "read-rps", 0, "--cognito-read-rps for both measurements (0: the tool's default)")
	flag.StringVar(&o.record, "record", "", "Also write the result section into this Markdown file (e.g. BENCHMARKS.md)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cognito:", err)
		os.Exit(1)
	}
}

type options struct {
	users, mfaEvery, runs int
	listRPS, readRPS      int
	record                string
}

// requests counts the requests of one measurement by quota category:
// other is DescribeUserPool (UserPoolRead; the tool paces it with the
// list requests).
type requests struct{ list, read, other int }

func (q requests) String() string {
	return fmt.Sprintf("%d UserList, %d UserRead, %d UserPoolRead", q.list, q.read, q.other)
}

type round struct {
	extract, extractCPU time.Duration
	migrate, migrateCPU time.Duration
	extractReqs         requests
	migrateReqs         requests
}

func (r round) ratio() float64 { return r.migrate.Seconds() / r.extract.Seconds() }

func run(ctx context.Context, o options) error {
	if o.users < 1 || o.runs < 1 || o.mfaEvery < 1 {
		return errors.New("-users, -runs and -mfa-every must be at least 1")
	}
	// The paces both measurements run at, as the extractor reads them.
	listRPS, readRPS, err := cognito.Rates(config("", "", o))
	if err != nil {
		return err
	}
	endpoint, err := benchreport.Need(cognitotest.EndpointVar)
	if err != nil {
		return err
	}
	dsn, err := benchreport.Need("DATABASE_URL")
	if err != nil {
		return err
	}
	// cognito-local checks no credentials; the AWS chain wants some.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	dir, err := os.MkdirTemp("", "bench-cognito-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchreport.Build(dir)
	if err != nil {
		return err
	}

	front, err := cognitotest.New(endpoint)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: front}
	go srv.Serve(ln)
	defer srv.Close()
	front.URL = "http://" + ln.Addr().String()

	direct := cognitotest.Client(endpoint)
	pool, withMFA, err := seed(ctx, direct, o.users, o.mfaEvery)
	if err != nil {
		return err
	}
	defer direct.DeleteUserPool(context.WithoutCancel(ctx), &cip.DeleteUserPoolInput{UserPoolId: aws.String(pool)})

	var sections []string
	for _, mfa := range []types.UserPoolMfaType{types.UserPoolMfaTypeOptional, types.UserPoolMfaTypeOff} {
		if err := setMFA(ctx, direct, pool, mfa); err != nil {
			return err
		}
		var rounds []round
		for i := range o.runs {
			var r round
			extract := func() error {
				before := count(front)
				var err error
				r.extract, r.extractCPU, err = extractOnly(ctx, front.URL, pool, o, int64(o.users))
				r.extractReqs = count(front).minus(before)
				return err
			}
			migrate := func() error {
				before := count(front)
				var err error
				r.migrate, r.migrateCPU, err = migrateOnce(ctx, bin, dsn, front.URL, pool, o, int64(o.users), i)
				r.migrateReqs = count(front).minus(before)
				return err
			}
			if err := benchreport.Alternately(i, extract, migrate); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "MFA %s, round %d: extract-only %s (CPU %s; %s), migrate %s (CPU %s; %s): ratio %.2f\n", mfa, i+1,
				r.extract.Round(time.Millisecond), r.extractCPU.Round(time.Millisecond), r.extractReqs,
				r.migrate.Round(time.Millisecond), r.migrateCPU.Round(time.Millisecond), r.migrateReqs, r.ratio())
			rounds = append(rounds, r)
		}
		sections = append(sections, scenario(o, mfa, rounds, listRPS, readRPS))
	}

	section := fmt.Sprintf(`## Users from Cognito (bench/cognito)

%s, %s; `+"`%s`"+`. cognito-local (on the same machine)
holds a pool of %d users (standard and custom attributes; CONFIRMED, FORCE_CHANGE_PASSWORD and disabled
users; three groups; SMS MFA enabled for %d of them), read through the paging front of
`+"`internal/cognitotest`"+` (60 users a page, as Cognito pages). Both measurements use the tool's own pacing:
`+"`--cognito-list-rps %d`"+` (UserList category: ListUsers, ListGroups, ListUsersInGroup) and
`+"`--cognito-read-rps %d`"+` (UserRead: AdminGetUser, one per user for MFA settings when the pool's MFA is
not OFF). Median of %d round(s) per pool setting.

%s
How the tool paces itself (docs/amplify.md, "Pacing"): one token bucket per quota category, burst 1,
so requests go out evenly spaced at the configured pace; a `+"`TooManyRequestsException`"+` halves that
category's pace (down to 1/s) and the request is retried with backoff; every 20 successes then raise it
by 1/s, back up to the configured pace.

Against real Cognito the reading sends exactly the requests counted here — ListUsers pages of 60,
ListGroups, a ListUsersInGroup page per 60 members of each group, and with MFA one AdminGetUser per
user — so the pacing, not the service, bounds the run, at the "at most" rates above. With the pool's
MFA not OFF, UserRead bounds it: Cognito's documented default quota is %d requests/s per account and
region, shared with the app, and the pace used here, %d/s, caps the run at %d users/s. With MFA
OFF, UserList bounds it: default quota %d/s, the pace used here %d/s, so at most %d users/s (60 a page),
less the group pages. Raise the paces only with the app's own traffic in mind, or with a quota
increase. Load average at the end: %s.
`, time.Now().UTC().Format("2006-01-02"), benchreport.Machine(), strings.Join(append([]string{"go run ./bench/cognito"}, os.Args[1:]...), " "),
		o.users, withMFA, listRPS, readRPS, o.runs, strings.Join(sections, "\n"),
		quotaUserRead, readRPS, readRPS, quotaUserList, listRPS, cognito.PageSize*listRPS, benchreport.LoadAverage())
	fmt.Print(section)
	if o.record != "" {
		return benchreport.Record(o.record, "cognito", section)
	}
	return nil
}

// scenario describes the rounds of one pool setting.
func scenario(o options, mfa types.UserPoolMfaType, rounds []round, listRPS, readRPS int) string {
	med := benchreport.Median(rounds, round.ratio)
	var each []string
	for _, r := range rounds {
		each = append(each, fmt.Sprintf("%.2f", r.ratio()))
	}
	rate := func(d time.Duration) float64 { return float64(o.users) / d.Seconds() }
	// The pacing's floor: each category's requests at its pace.
	q := med.migrateReqs
	listFloor := float64(q.list) / float64(listRPS)
	readFloor := float64(q.read) / float64(readRPS)
	bound, floor := "UserList", listFloor
	if readFloor > listFloor {
		bound, floor = "UserRead", readFloor
	}
	// At the documented default quotas, were the tool to use all of them.
	quotaFloor := max(float64(q.list)/quotaUserList, float64(q.read)/quotaUserRead)
	return fmt.Sprintf(`### Pool MFA %s

| | wall | users/s | CPU (ours) | requests (by quota category) |
|---|---|---|---|---|
| extract-only (the extractor listing, users discarded) | %s | %.0f | %s | %s |
| migrate --source amplify --only users | %s | %.0f | %s | %s |

**migrate / extract-only: %.2f** (each round: %s). Bounding category: **%s** — its requests at
the tool's pace take %.1f s at least (%.0f users/s at most); at Cognito's full default quotas
(none left to the app) %.1f s (%.0f users/s). %s
`, mfa,
		med.extract.Round(time.Millisecond), rate(med.extract), med.extractCPU.Round(time.Millisecond), med.extractReqs,
		med.migrate.Round(time.Millisecond), rate(med.migrate), med.migrateCPU.Round(time.Millisecond), med.migrateReqs,
		med.ratio(), strings.Join(each, ", "), bound, floor, float64(o.users)/floor, quotaFloor, float64(o.users)/quotaFloor,
		verdict(med.extract, floor))
}

// verdict says what bounded the extract-only reading here: the pacing when
// it took at most a third more than the pacing's floor, else the local
// stand-in.
func verdict(extract time.Duration, floor float64) string {
	if extract.Seconds() <= floor*4/3 {
		return fmt.Sprintf("Here the pacing bounds the reading: extract-only took %.0f%% of that floor.", 100*extract.Seconds()/floor)
	}
	return fmt.Sprintf("Here cognito-local, not the pacing, bounds the reading (extract-only took %.1f× that floor): "+
		"it answers every page the front cuts with the whole pool.", extract.Seconds()/floor)
}

// count is the front's requests so far, by quota category.
func count(f *cognitotest.Front) requests {
	return requests{
		list:  f.Count("ListUsers") + f.Count("ListUsersInGroup") + f.Count("ListGroups"),
		read:  f.Count("AdminGetUser"),
		other: f.Count("DescribeUserPool"),
	}
}

func (q requests) minus(p requests) requests {
	return requests{q.list - p.list, q.read - p.read, q.other - p.other}
}

// seed makes a pool of n users and returns its id and how many users
// have MFA. Users are u00000…: email and name attributes, custom:tier and
// custom:score; every 7th is FORCE_CHANGE_PASSWORD (no password of its
// own), every 13th disabled, the others CONFIRMED; every 3rd is in group
// viewers, every 10th in editors, every 50th in admins; every mfaEvery-th
// CONFIRMED user has a phone number and SMS MFA enabled and preferred.
func seed(ctx context.Context, c *cip.Client, n, mfaEvery int) (string, int, error) {
	start := time.Now()
	out, err := c.CreateUserPool(ctx, &cip.CreateUserPoolInput{
		PoolName: aws.String(fmt.Sprintf("bench-%d", time.Now().UnixNano())),
		Schema: []types.SchemaAttributeType{
			{Name: aws.String("tier"), AttributeDataType: types.AttributeDataTypeString, Mutable: aws.Bool(true)},
			{Name: aws.String("score"), AttributeDataType: types.AttributeDataTypeNumber, Mutable: aws.Bool(true)},
		},
	})
	if err != nil {
		return "", 0, fmt.Errorf("creating a user pool in cognito-local: %w", err)
	}
	pool := aws.ToString(out.UserPool.Id)
	cl, err := c.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{
		UserPoolId: aws.String(pool), ClientName: aws.String("app"),
		ExplicitAuthFlows: []types.ExplicitAuthFlowsType{types.ExplicitAuthFlowsTypeAllowUserPasswordAuth, types.ExplicitAuthFlowsTypeAllowRefreshTokenAuth},
	})
	if err != nil {
		return "", 0, fmt.Errorf("creating an app client: %w", err)
	}
	client := aws.ToString(cl.UserPoolClient.ClientId)
	if err := setMFA(ctx, c, pool, types.UserPoolMfaTypeOptional); err != nil {
		return "", 0, err
	}
	groups := []struct {
		name  string
		every int
	}{{"viewers", 3}, {"editors", 10}, {"admins", 50}}
	for _, g := range groups {
		if _, err := c.CreateGroup(ctx, &cip.CreateGroupInput{UserPoolId: aws.String(pool), GroupName: aws.String(g.name)}); err != nil {
			return "", 0, fmt.Errorf("creating group %s: %w", g.name, err)
		}
	}
	mfa := func(i int) bool { return i%mfaEvery == 0 && i%7 != 0 }
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range n {
		g.Go(func() error {
			name := fmt.Sprintf("u%05d", i)
			attrs := []types.AttributeType{
				{Name: aws.String("email"), Value: aws.String(name + "@example.test")},
				{Name: aws.String("email_verified"), Value: aws.String("true")},
				{Name: aws.String("name"), Value: aws.String(fmt.Sprintf("User %d", i))},
				{Name: aws.String("custom:tier"), Value: aws.String([]string{"bronze", "silver", "gold"}[i%3])},
				{Name: aws.String("custom:score"), Value: aws.String(fmt.Sprint(i % 100))},
			}
			if mfa(i) {
				attrs = append(attrs, types.AttributeType{Name: aws.String("phone_number"), Value: aws.String(fmt.Sprintf("+1555%07d", i))},
					types.AttributeType{Name: aws.String("phone_number_verified"), Value: aws.String("true")})
			}
			if _, err := c.AdminCreateUser(gctx, &cip.AdminCreateUserInput{
				UserPoolId: aws.String(pool), Username: aws.String(name), UserAttributes: attrs,
				MessageAction: types.MessageActionTypeSuppress, TemporaryPassword: aws.String("Temp-Passw0rd!"),
			}); err != nil {
				return fmt.Errorf("creating user %s: %w", name, err)
			}
			password := fmt.Sprintf("Bench-Passw0rd-%d!", i)
			if i%7 != 0 {
				if _, err := c.AdminSetUserPassword(gctx, &cip.AdminSetUserPasswordInput{
					UserPoolId: aws.String(pool), Username: aws.String(name), Password: aws.String(password), Permanent: true,
				}); err != nil {
					return fmt.Errorf("setting the password of %s: %w", name, err)
				}
			}
			if mfa(i) {
				auth, err := c.InitiateAuth(gctx, &cip.InitiateAuthInput{ClientId: aws.String(client), AuthFlow: types.AuthFlowTypeUserPasswordAuth,
					AuthParameters: map[string]string{"USERNAME": name, "PASSWORD": password}})
				if err != nil {
					return fmt.Errorf("signing %s in: %w", name, err)
				}
				if auth.AuthenticationResult == nil {
					return fmt.Errorf("signing %s in: a challenge (%s) instead of tokens", name, auth.ChallengeName)
				}
				if _, err := c.SetUserMFAPreference(gctx, &cip.SetUserMFAPreferenceInput{AccessToken: auth.AuthenticationResult.AccessToken,
					SMSMfaSettings: &types.SMSMfaSettingsType{Enabled: true, PreferredMfa: true}}); err != nil {
					return fmt.Errorf("enabling MFA for %s: %w", name, err)
				}
			}
			for _, gr := range groups {
				if i%gr.every == 0 {
					if _, err := c.AdminAddUserToGroup(gctx, &cip.AdminAddUserToGroupInput{UserPoolId: aws.String(pool),
						GroupName: aws.String(gr.name), Username: aws.String(name)}); err != nil {
						return fmt.Errorf("adding %s to %s: %w", name, gr.name, err)
					}
				}
			}
			if i%13 == 0 {
				if _, err := c.AdminDisableUser(gctx, &cip.AdminDisableUserInput{UserPoolId: aws.String(pool), Username: aws.String(name)}); err != nil {
					return fmt.Errorf("disabling %s: %w", name, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", 0, err
	}
	withMFA := 0
	for i := range n {
		if mfa(i) {
			withMFA++
		}
	}
	fmt.Fprintf(os.Stderr, "seeded pool %s: %d users (%d with MFA) in %s\n", pool, n, withMFA, time.Since(start).Round(time.Second))
	return pool, withMFA, nil
}

// setMFA sets the pool's MFA configuration (SMS, when not OFF).
func setMFA(ctx context.Context, c *cip.Client, pool string, mfa types.UserPoolMfaType) error {
	in := &cip.SetUserPoolMfaConfigInput{UserPoolId: aws.String(pool), MfaConfiguration: mfa}
	if mfa != types.UserPoolMfaTypeOff {
		in.SmsMfaConfiguration = &types.SmsMfaConfigType{SmsAuthenticationMessage: aws.String("code {####}")}
	}
	if _, err := c.SetUserPoolMfaConfig(ctx, in); err != nil {
		return fmt.Errorf("setting the pool's MFA to %s: %w", mfa, err)
	}
	return nil
}

// config is the extractor's configuration, as migrate gets it from flags.
func config(endpoint, pool string, o options) plugin.Config {
	cfg := plugin.Config{"cognito-endpoint": endpoint, "cognito-user-pool-id": pool, "aws-region": "us-east-1"}
	if o.listRPS > 0 {
		cfg[cognito.ListRPSOption.Name] = fmt.Sprint(o.listRPS)
	}
	if o.readRPS > 0 {
		cfg[cognito.ReadRPSOption.Name] = fmt.Sprint(o.readRPS)
	}
	return cfg
}

// extractOnly lists the pool's users with the Cognito extractor,
// discarding them.
func extractOnly(ctx context.Context, endpoint, pool string, o options, want int64) (time.Duration, time.Duration, error) {
	start, cpu0 := time.Now(), procstat.SelfCPU()
	ex, err := cognito.New(ctx, config(endpoint, pool, o))
	if err != nil {
		return 0, 0, err
	}
	defer ex.Close()
	rt, streams, err := extractors.PlanSnapshot(ctx, ex, 1)
	if err != nil {
		return 0, 0, err
	}
	var n int64
	for _, st := range streams {
		for _, p := range st.Partitions {
			if err := ex.Read(ctx, p, rt, "", func(record.Record) error { n++; return nil }); err != nil {
				return 0, 0, err
			}
		}
	}
	elapsed, cpu := time.Since(start), procstat.SelfCPU()-cpu0
	if n != want {
		return 0, 0, fmt.Errorf("extract-only read %d users, want %d", n, want)
	}
	return elapsed, cpu, nil
}

// migrateOnce migrates the pool's users into a fresh database and checks
// the count.
func migrateOnce(ctx context.Context, bin, dsn, endpoint, pool string, o options, want int64, i int) (wall, cpu time.Duration, err error) {
	target, drop, err := benchreport.FreshDatabase(ctx, dsn, fmt.Sprintf("bench_cognito_%d", i))
	if err != nil {
		return 0, 0, err
	}
	defer drop()
	args := []string{"migrate", "--source", "amplify", "--only", "users", "--cognito-user-pool-id", pool,
		"--cognito-endpoint", endpoint, "--no-progress"}
	for flag, v := range map[string]int{cognito.ListRPSOption.Name: o.listRPS, cognito.ReadRPSOption.Name: o.readRPS} {
		if v > 0 {
			args = append(args, "--"+flag, fmt.Sprint(v))
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+target)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %v\n%s", err, stderr.String())
	}
	cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	var got int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{cognito.UsersSchema, "users"}.Sanitize()).Scan(&got); err != nil {
		return 0, 0, fmt.Errorf("counting the migrated users: %w", err)
	}
	if got != want {
		return 0, 0, fmt.Errorf("migrate copied %d users, want %d", got, want)
	}
	return wall, cpu, nil
}
