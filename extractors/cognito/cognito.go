// Package cognito extracts the users of an Amazon Cognito user pool (the
// users of an AWS Amplify app) as user records (record.User), registered
// as the users extractor of --source amplify.
//
// # How users are read
//
// Users are one stream ("users") of one partition: ListUsers has no way
// to split a pool, and the account's request quota, not the reading, is
// what bounds the speed. Read lists the pool with ListUsers, 60 users a
// page (Cognito's maximum), following PaginationToken. Before the first
// page it reads every group's members (ListGroups, then ListUsersInGroup
// per group, 60 a page): that costs one request per group plus one per 60
// memberships, where AdminListGroupsForUser would cost one request per
// user. When the pool's MFA configuration (DescribeUserPool) is not OFF,
// each user's MFA settings are read with AdminGetUser, one request per
// user, in another quota category.
//
// # Cursor
//
// A record's cursor is the PaginationToken that fetched its page (empty
// for the first) and its username. A resumed read fetches that page again
// and continues just after the username, even mid-page. A page that no
// longer holds the username (the user was deleted meanwhile) stops the
// read with advice to use --restart, as does a token Cognito no longer
// accepts: Cognito's order is its own, so nothing can be assumed about
// where the user was.
//
// # Pacing
//
// Cognito limits requests per second per account and region, per
// category of operations, shared with the app itself. ListUsers,
// ListUsersInGroup and ListGroups are paced together at
// --cognito-list-rps (default 20, two thirds of the UserList category's
// default quota of 30), AdminGetUser at --cognito-read-rps (default 80,
// two thirds of UserRead's 120). A TooManyRequestsException halves the
// pace and the request is retried after a backoff (the SDK's, then the
// --retry-* policy's); the pace recovers as requests succeed (see pacer).
//
// # Records
//
// The uid is the user's sub (immutable, never reused); the username, the
// status (CONFIRMED, UNCONFIRMED, FORCE_CHANGE_PASSWORD, RESET_REQUIRED,
// EXTERNAL_PROVIDER, ...), whether the user is enabled (disabled users
// are disabled), the last-modified time, every attribute as Cognito has
// it (extra.attributes), the groups (extra.groups) and MFA settings go to
// extra; email, email_verified, phone_number, name and picture also fill
// the users table's own columns; custom: attributes and the groups are
// the custom claims (as Cognito puts them in the ID token:
// "custom:tier", "cognito:groups"); linked identity-provider users (the
// identities attribute) are providers. Every user except those of an
// external provider has the credential passwords.None: Cognito exports no
// hashes; passwords/capture captures each at the user's first sign-in.
package cognito

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/amplify"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Options of the Cognito users extractor.
var (
	UserPoolOption = plugin.Option{
		Name: "cognito-user-pool-id",
		Help: "Cognito user pool whose users to migrate (us-east-1_AbCdEf123; Amplify: amplify/backend/auth/*/build or amplify_outputs.json).",
		Env:  []string{"COGNITO_USER_POOL_ID"},
	}
	ListRPSOption = plugin.Option{
		Name:    "cognito-list-rps",
		Help:    "Requests per second for ListUsers, ListUsersInGroup and ListGroups (Cognito's UserList quota, 30 by default, is shared with the app).",
		Type:    plugin.Int,
		Default: "20",
	}
	ReadRPSOption = plugin.Option{
		Name:    "cognito-read-rps",
		Help:    "Requests per second for AdminGetUser, read per user for MFA settings when the pool's MFA is not OFF (Cognito's UserRead quota: 120 by default).",
		Type:    plugin.Int,
		Default: "80",
	}
)

// StreamName is the name of the one stream of users.
const StreamName = "users"

// PageSize is the number of users per ListUsers page: Cognito's maximum.
const PageSize = 60

func init() {
	extractors.Register(extractors.Spec{
		Source: amplify.Source,
		Name:   "cognito",
		Kind:   record.KindUser,
		Help:   "Every user of the app's Cognito user pool with attributes, status, groups, MFA settings and linked identities (no password hashes: Cognito exports none; they are captured at first sign-in).",
		Options: []plugin.Option{
			amplify.RegionOption, amplify.CognitoEndpointOption, UserPoolOption, ListRPSOption, ReadRPSOption,
			retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// Extractor reads a Cognito user pool's users. It is safe for concurrent
// use.
type Extractor struct {
	client     *cip.Client
	pool       string
	list, read *pacer
	policy     retry.Policy
}

var (
	_ extractors.Extractor            = (*Extractor)(nil)
	_ extractors.Counter              = (*Extractor)(nil)
	_ extractors.UsersSchemaDefaulter = (*Extractor)(nil)
)

// UsersSchema is the PostgreSQL schema Cognito's users go to when
// --users-schema is not given (extractors.UsersSchemaDefaulter).
const UsersSchema = "cognito_users"

// DefaultUsersSchema is UsersSchema: Cognito's users stay apart from other
// platforms' users migrated into the same database.
func (e *Extractor) DefaultUsersSchema() string { return UsersSchema }

// New builds the extractor from cfg: the pool, the region and endpoint,
// credentials from the AWS SDK's default chain.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	pool := cfg.String(UserPoolOption.Name)
	if pool == "" {
		return nil, fmt.Errorf("missing required option: --%s", UserPoolOption.Name)
	}
	endpoint, err := amplify.Endpoint(cfg, amplify.CognitoEndpointOption)
	if err != nil {
		return nil, err
	}
	listRPS, readRPS, err := Rates(cfg)
	if err != nil {
		return nil, err
	}
	policy, err := retry.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := amplify.Config(ctx, cfg)
	if err != nil {
		return nil, err
	}
	client := cip.NewFromConfig(awsCfg, func(o *cip.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return NewWithClient(client, pool, float64(listRPS), float64(readRPS), policy), nil
}

// Rates returns the paces cfg sets (--cognito-list-rps, --cognito-read-rps),
// each option's default when unset; each must be between 1 and 10000.
func Rates(cfg plugin.Config) (list, read int, err error) {
	if list, err = paceOption(cfg, ListRPSOption); err != nil {
		return 0, 0, err
	}
	if read, err = paceOption(cfg, ReadRPSOption); err != nil {
		return 0, 0, err
	}
	return list, read, nil
}

// paceOption reads one pace option of cfg, its default when unset.
func paceOption(cfg plugin.Config, o plugin.Option) (int, error) {
	def, _ := strconv.Atoi(o.Default)
	n, err := cfg.Int(o.Name, def)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > 10000 {
		return 0, fmt.Errorf("--%s must be between 1 and 10000", o.Name)
	}
	return n, nil
}

// NewWithClient builds the extractor around a client, pacing list
// requests at listRPS and AdminGetUser at readRPS per second.
func NewWithClient(client *cip.Client, pool string, listRPS, readRPS float64, policy retry.Policy) *Extractor {
	return &Extractor{client: client, pool: pool, list: newPacer(listRPS), read: newPacer(readRPS), policy: policy}
}

// Source names the pool: "cognito:<pool id>" (the id starts with the
// region).
func (e *Extractor) Source() string { return "cognito:" + e.pool }

// Close releases nothing: the SDK's client has no connections to close.
func (e *Extractor) Close() error { return nil }

// Plan returns the one stream of one partition. It checks that the pool
// exists. readTime is ignored: Cognito reads only the current state.
func (e *Extractor) Plan(ctx context.Context, _ int, _ time.Time) ([]extractors.Stream, error) {
	if _, err := e.describe(ctx); err != nil {
		return nil, err
	}
	return []extractors.Stream{{Name: StreamName, Kind: record.KindUser,
		Partitions: []extractors.Partition{{Stream: StreamName, ID: "p0000"}}}}, nil
}

// Count returns the pool's EstimatedNumberOfUsers (Cognito's own,
// approximate, count).
func (e *Extractor) Count(ctx context.Context, _ extractors.Stream) (int64, error) {
	p, err := e.describe(ctx)
	if err != nil {
		return 0, err
	}
	return int64(p.EstimatedNumberOfUsers), nil
}

// describe reads the pool's description.
func (e *Extractor) describe(ctx context.Context) (*types.UserPoolType, error) {
	what := "describing Cognito user pool " + e.pool
	var out *cip.DescribeUserPoolOutput
	err := e.call(ctx, e.list, what, func(ctx context.Context) error {
		var err error
		out, err = e.client.DescribeUserPool(ctx, &cip.DescribeUserPoolInput{UserPoolId: &e.pool})
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.UserPool == nil {
		return nil, fmt.Errorf("%s: the answer holds no pool", what)
	}
	return out.UserPool, nil
}

// call runs one request paced by p under the retry policy: throttling,
// Cognito's internal errors and network failures are retried.
func (e *Extractor) call(ctx context.Context, p *pacer, what string, fn func(ctx context.Context) error) error {
	err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
		if err := p.wait(ctx); err != nil {
			return err
		}
		err := fn(ctx)
		p.done(err)
		return classify(err)
	})
	if err != nil {
		return retry.Describe(what, err)
	}
	return nil
}

// classify marks err transient or permanent for retry.Do.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "TooManyRequestsException", "ThrottlingException", "InternalErrorException", "ServiceUnavailable":
			return retry.Mark(err, true)
		}
		return retry.Mark(err, false)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Not an answer of Cognito's: the connection failed.
	return retry.Mark(err, true)
}

// cursor is a record's position: the token of its page and its username.
type cursor struct {
	Token    string `json:"t"`
	Username string `json:"u"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Read emits every user of the pool after the cursor after, in
// ListUsers' order (see the package documentation).
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	var from cursor
	if after != "" {
		if err := json.Unmarshal([]byte(after), &from); err != nil || from.Username == "" {
			return fmt.Errorf("partition %s of %s: the cursor is not one this extractor wrote; use --restart", p.ID, e.Source())
		}
	}
	pool, err := e.describe(ctx)
	if err != nil {
		return err
	}
	withMFA := pool.MfaConfiguration != "" && pool.MfaConfiguration != types.UserPoolMfaTypeOff
	groups, err := e.groups(ctx)
	if err != nil {
		return err
	}
	token, skipTo := from.Token, from.Username
	for {
		what := "listing the users of " + e.Source()
		var page *cip.ListUsersOutput
		err := e.call(ctx, e.list, what, func(ctx context.Context) error {
			in := &cip.ListUsersInput{UserPoolId: &e.pool, Limit: aws.Int32(PageSize)}
			if token != "" {
				in.PaginationToken = aws.String(token)
			}
			var err error
			page, err = e.client.ListUsers(ctx, in)
			return err
		})
		if err != nil {
			if skipTo != "" {
				return fmt.Errorf("%w (resuming after user %q with a saved page token; if Cognito no longer accepts it, --restart reads every user again and rewrites only what changed)", err, skipTo)
			}
			return err
		}
		users := page.Users
		if skipTo != "" {
			i := indexOf(users, skipTo)
			if i < 0 {
				return fmt.Errorf("resuming %s: the page the checkpoint was taken in no longer holds user %q (deleted meanwhile?); "+
					"use --restart to read every user again (only rows that changed are rewritten)", e.Source(), skipTo)
			}
			users, skipTo = users[i+1:], ""
		}
		for _, u := range users {
			var mfa MFA
			if withMFA {
				mfa, err = e.mfa(ctx, aws.ToString(u.Username))
				var gone *types.UserNotFoundException
				if errors.As(err, &gone) {
					continue // deleted since its page was listed
				}
				if err != nil {
					return err
				}
			}
			rec := UserFrom(u, groups[aws.ToString(u.Username)], mfa)
			if err := emit(rec.Record(cursor{Token: token, Username: aws.ToString(u.Username)}.String())); err != nil {
				return err
			}
		}
		if page.PaginationToken == nil || *page.PaginationToken == "" {
			return nil
		}
		token = *page.PaginationToken
	}
}

func indexOf(users []types.UserType, username string) int {
	for i, u := range users {
		if aws.ToString(u.Username) == username {
			return i
		}
	}
	return -1
}

// groups returns every user's groups by username, sorted: ListGroups,
// then ListUsersInGroup per group, each paged.
func (e *Extractor) groups(ctx context.Context) (map[string][]string, error) {
	var names []string
	var next *string
	for {
		var out *cip.ListGroupsOutput
		err := e.call(ctx, e.list, "listing the groups of "+e.Source(), func(ctx context.Context) error {
			var err error
			out, err = e.client.ListGroups(ctx, &cip.ListGroupsInput{UserPoolId: &e.pool, Limit: aws.Int32(PageSize), NextToken: next})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, g := range out.Groups {
			names = append(names, aws.ToString(g.GroupName))
		}
		if next = out.NextToken; next == nil || *next == "" {
			break
		}
	}
	byUser := map[string][]string{}
	for _, g := range names {
		next = nil
		for {
			var out *cip.ListUsersInGroupOutput
			err := e.call(ctx, e.list, fmt.Sprintf("listing the members of group %q of %s", g, e.Source()), func(ctx context.Context) error {
				var err error
				out, err = e.client.ListUsersInGroup(ctx, &cip.ListUsersInGroupInput{UserPoolId: &e.pool, GroupName: aws.String(g),
					Limit: aws.Int32(PageSize), NextToken: next})
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, u := range out.Users {
				byUser[aws.ToString(u.Username)] = append(byUser[aws.ToString(u.Username)], g)
			}
			if next = out.NextToken; next == nil || *next == "" {
				break
			}
		}
	}
	for _, gs := range byUser {
		sort.Strings(gs)
	}
	return byUser, nil
}

// mfa reads a user's MFA settings with AdminGetUser.
func (e *Extractor) mfa(ctx context.Context, username string) (MFA, error) {
	var out *cip.AdminGetUserOutput
	err := e.call(ctx, e.read, fmt.Sprintf("reading the MFA settings of user %q of %s", username, e.Source()), func(ctx context.Context) error {
		var err error
		out, err = e.client.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: &e.pool, Username: aws.String(username)})
		return err
	})
	if err != nil {
		return MFA{}, err
	}
	m := MFA{Known: true, Settings: append([]string(nil), out.UserMFASettingList...), Preferred: aws.ToString(out.PreferredMfaSetting)}
	sort.Strings(m.Settings)
	return m, nil
}
