package cognitotest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// Client returns an SDK client for endpoint (cognito-local or a Front),
// with static test credentials: cognito-local checks none.
func Client(endpoint string) *cip.Client {
	return cip.New(cip.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("cognitotest", "cognitotest", ""),
	})
}

// Pool is a fresh user pool of cognito-local with an app client that
// allows USER_PASSWORD_AUTH and ADMIN_USER_PASSWORD_AUTH.
type Pool struct {
	ID, ClientID string
}

// NewPool creates a pool named after the test with custom attributes
// custom:tier (string, mutable) and custom:score (number), and its app
// client. cognito-local keeps pools until its data directory is removed;
// each test makes its own.
func NewPool(t testing.TB, c *cip.Client) Pool {
	t.Helper()
	ctx := context.Background()
	out, err := c.CreateUserPool(ctx, &cip.CreateUserPoolInput{
		PoolName: aws.String(testenv.UniqueName("bm", 40)),
		Schema: []types.SchemaAttributeType{
			{Name: aws.String("tier"), AttributeDataType: types.AttributeDataTypeString, Mutable: aws.Bool(true)},
			{Name: aws.String("score"), AttributeDataType: types.AttributeDataTypeNumber, Mutable: aws.Bool(true)},
		},
	})
	if err != nil {
		t.Fatalf("creating a user pool in cognito-local: %v", err)
	}
	p := Pool{ID: aws.ToString(out.UserPool.Id)}
	cl, err := c.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{
		UserPoolId: aws.String(p.ID), ClientName: aws.String("app"),
		ExplicitAuthFlows: []types.ExplicitAuthFlowsType{types.ExplicitAuthFlowsTypeAllowUserPasswordAuth,
			types.ExplicitAuthFlowsTypeAllowAdminUserPasswordAuth, types.ExplicitAuthFlowsTypeAllowRefreshTokenAuth},
	})
	if err != nil {
		t.Fatalf("creating an app client in cognito-local: %v", err)
	}
	p.ClientID = aws.ToString(cl.UserPoolClient.ClientId)
	return p
}

// Attrs turns name, value pairs into attributes.
func Attrs(kv ...string) []types.AttributeType {
	out := make([]types.AttributeType, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.AttributeType{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

// CreateUser creates a user with attrs, without sending a message. With a
// password the user is CONFIRMED with it (AdminSetUserPassword,
// permanent); without, the user stays FORCE_CHANGE_PASSWORD with a
// temporary password of its own.
func CreateUser(t testing.TB, c *cip.Client, pool, username, password string, attrs ...types.AttributeType) {
	t.Helper()
	ctx := context.Background()
	_, err := c.AdminCreateUser(ctx, &cip.AdminCreateUserInput{
		UserPoolId: aws.String(pool), Username: aws.String(username), UserAttributes: attrs,
		MessageAction: types.MessageActionTypeSuppress, TemporaryPassword: aws.String("Temp-Passw0rd!"),
	})
	if err != nil {
		t.Fatalf("creating user %s: %v", username, err)
	}
	if password == "" {
		return
	}
	if _, err := c.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{
		UserPoolId: aws.String(pool), Username: aws.String(username), Password: aws.String(password), Permanent: true,
	}); err != nil {
		t.Fatalf("setting the password of %s: %v", username, err)
	}
}
