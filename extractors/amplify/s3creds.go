package amplify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Credentials gives minio-go (the S3 client of the Amplify extractors)
// the credentials of awsCfg: the AWS SDK's default chain (environment,
// shared files, SSO, the instance's role), refreshed when they expire.
// ctx is the one they are retrieved under; its cancellation is ignored.
func S3Credentials(ctx context.Context, awsCfg aws.Config) *credentials.Credentials {
	return credentials.New(&chainCredentials{ctx: context.WithoutCancel(ctx), p: awsCfg.Credentials})
}

type chainCredentials struct {
	ctx     context.Context
	p       aws.CredentialsProvider
	expires time.Time
	canExp  bool
}

func (c *chainCredentials) Retrieve() (credentials.Value, error) {
	return c.RetrieveWithCredContext(nil)
}

func (c *chainCredentials) RetrieveWithCredContext(*credentials.CredContext) (credentials.Value, error) {
	if c.p == nil {
		return credentials.Value{}, errors.New("no AWS credentials found by the default chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, SSO, an instance role)")
	}
	v, err := c.p.Retrieve(c.ctx)
	if err != nil {
		return credentials.Value{}, fmt.Errorf("getting AWS credentials from the default chain: %w", err)
	}
	c.expires, c.canExp = v.Expires, v.CanExpire
	return credentials.Value{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.SessionToken,
		Expiration: v.Expires, SignerType: credentials.SignatureV4}, nil
}

func (c *chainCredentials) IsExpired() bool {
	return c.canExp && !time.Now().Add(time.Minute).Before(c.expires)
}
