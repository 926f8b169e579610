package cognitotest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"
)

// TestFrontPagesAsCognito is Front's contract, driven by the official AWS
// SDK against cognito-local directly and through Front: cognito-local
// answers each list at once (whatever Limit says: why Front exists);
// through Front the pages hold at most Limit items (60 when absent), the
// last has no token, and together they are exactly cognito-local's answer
// in its order, for ListUsers, ListUsersInGroup and ListGroups; a Limit
// over 60 and a token Front did not issue are refused as Cognito refuses
// them; other operations pass through unchanged.
func TestFrontPagesAsCognito(t *testing.T) {
	ctx := context.Background()
	endpoint := Endpoint(t)
	direct := Client(endpoint)
	front := Start(t, endpoint)
	paged := Client(front.URL)
	pool := NewPool(t, direct)
	const users, groups = 131, 62
	for i := range users {
		CreateUser(t, direct, pool.ID, fmt.Sprintf("user%03d", i), "", Attrs("custom:tier", fmt.Sprint(i%3))...)
	}
	for i := range groups {
		g := fmt.Sprintf("group%02d", i)
		if _, err := direct.CreateGroup(ctx, &cip.CreateGroupInput{UserPoolId: &pool.ID, GroupName: &g}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 70 {
		if _, err := direct.AdminAddUserToGroup(ctx, &cip.AdminAddUserToGroupInput{UserPoolId: &pool.ID,
			GroupName: aws.String("group00"), Username: aws.String(fmt.Sprintf("user%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}

	// cognito-local alone: everything in one answer, Limit ignored.
	all, err := direct.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: &pool.ID, Limit: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Users) != users || all.PaginationToken != nil {
		t.Fatalf("cognito-local answered %d users (token %v) to Limit 10; the front's reason to exist is that it answers all %d at once",
			len(all.Users), all.PaginationToken != nil, users)
	}
	want := usernames(all.Users)

	for _, limit := range []*int32{nil, aws.Int32(0), aws.Int32(60), aws.Int32(7)} {
		size := 60
		if limit != nil && *limit > 0 {
			size = int(*limit)
		}
		var got []string
		pages := 0
		var token *string
		for {
			out, err := paged.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: &pool.ID, Limit: limit, PaginationToken: token})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(out.Users) > size {
				t.Fatalf("a page of %d users for Limit %d", len(out.Users), size)
			}
			got = append(got, usernames(out.Users)...)
			if token = out.PaginationToken; token == nil {
				if len(out.Users) == 0 && pages > 1 {
					t.Errorf("an empty last page")
				}
				break
			}
			if len(out.Users) != size {
				t.Fatalf("a page of %d users before the last, Limit %d", len(out.Users), size)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Limit %v: the pages hold %d users, not cognito-local's %d in its order", limit, len(got), len(want))
		}
		if wantPages := (users + size - 1) / size; pages != wantPages {
			t.Errorf("Limit %d: %d pages, want %d", size, pages, wantPages)
		}
	}
	// The attributes of a user come through unchanged.
	first, err := paged.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: &pool.ID, Limit: aws.Int32(1)})
	if err != nil || len(first.Users) != 1 || fmt.Sprint(attrs(first.Users[0])) != fmt.Sprint(attrs(all.Users[0])) {
		t.Errorf("the first user differs through the front (%v)", err)
	}

	var members []string
	var next *string
	for {
		out, err := paged.ListUsersInGroup(ctx, &cip.ListUsersInGroupInput{UserPoolId: &pool.ID, GroupName: aws.String("group00"), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, usernames(out.Users)...)
		if next = out.NextToken; next == nil {
			break
		}
	}
	inGroup, err := direct.ListUsersInGroup(ctx, &cip.ListUsersInGroupInput{UserPoolId: &pool.ID, GroupName: aws.String("group00")})
	if err != nil || fmt.Sprint(members) != fmt.Sprint(usernames(inGroup.Users)) || len(members) != 70 {
		t.Errorf("ListUsersInGroup through the front: %d members; want cognito-local's %d (%v)", len(members), len(inGroup.Users), err)
	}
	var names []string
	next = nil
	for {
		out, err := paged.ListGroups(ctx, &cip.ListGroupsInput{UserPoolId: &pool.ID, Limit: aws.Int32(25), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.Groups {
			names = append(names, aws.ToString(g.GroupName))
		}
		if next = out.NextToken; next == nil {
			break
		}
	}
	if len(names) != groups || front.Count("ListGroups") != 3 {
		t.Errorf("ListGroups through the front: %d groups in %d requests; want %d in 3", len(names), front.Count("ListGroups"), groups)
	}

	refused := func(what string, err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterException" {
			t.Errorf("%s: %v; want InvalidParameterException", what, err)
		}
	}
	_, err = paged.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: &pool.ID, Limit: aws.Int32(61)})
	refused("Limit 61", err)
	_, err = paged.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: &pool.ID, PaginationToken: aws.String("not-a-token")})
	refused("a foreign token", err)

	// Passed through: a user's own answer is the same either way.
	a, err1 := direct.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: &pool.ID, Username: aws.String("user005")})
	b, err2 := paged.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: &pool.ID, Username: aws.String("user005")})
	if err1 != nil || err2 != nil || fmt.Sprint(attrs(types.UserType{Attributes: a.UserAttributes})) != fmt.Sprint(attrs(types.UserType{Attributes: b.UserAttributes})) || len(a.UserAttributes) < 2 {
		t.Errorf("AdminGetUser differs through the front (%v, %v)", err1, err2)
	}

	// Throttling, as past the quota.
	front.Throttle("ListUsers", 1)
	noRetry := Client(front.URL)
	_, err = noRetry.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: &pool.ID}, func(o *cip.Options) { o.RetryMaxAttempts = 1 })
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) {
		t.Errorf("throttled ListUsers: %v; want TooManyRequestsException", err)
	}
}

func usernames(us []types.UserType) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = aws.ToString(u.Username)
	}
	return out
}

func attrs(u types.UserType) map[string]string {
	m := map[string]string{}
	for _, a := range u.Attributes {
		m[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	return m
}
