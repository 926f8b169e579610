// Package amplify holds what the AWS Amplify extractors share: the options
// naming the app's AWS region, the endpoints of its services (overridable
// for the local stand-ins tests run: DynamoDB Local, cognito-local, MinIO)
// and how they become an AWS SDK configuration.
//
// An Amplify app keeps its users in a Cognito user pool, its data in
// DynamoDB tables (behind AppSync) and its files in an S3 bucket; each kind
// has its own extractor package, registered under --source amplify.
// Credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, the instance's role); they are
// never options of ours, so they never reach a report or a log.
package amplify

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

// Source is the value of --source for AWS Amplify.
const Source = "amplify"

// Options shared by the Amplify extractors. An endpoint left empty means
// the service's public AWS endpoint for the region.
var (
	RegionOption = plugin.Option{
		Name:    "aws-region",
		Help:    "AWS region of the Amplify app's resources (us-east-1).",
		Env:     []string{"AWS_REGION", "AWS_DEFAULT_REGION"},
		Default: "us-east-1",
	}
	DynamoDBEndpointOption = plugin.Option{
		Name: "dynamodb-endpoint",
		Help: "DynamoDB endpoint URL, for DynamoDB Local or a VPC endpoint (default: AWS's endpoint for the region).",
		Env:  []string{"DYNAMODB_ENDPOINT"},
	}
	CognitoEndpointOption = plugin.Option{
		Name: "cognito-endpoint",
		Help: "Cognito user pools endpoint URL, for cognito-local or a VPC endpoint (default: AWS's endpoint for the region).",
		Env:  []string{"COGNITO_ENDPOINT"},
	}
	S3EndpointOption = plugin.Option{
		Name: "amplify-s3-endpoint",
		Help: "S3 endpoint URL of the app's storage bucket, for MinIO or a VPC endpoint (default: AWS's endpoint for the region).",
		Env:  []string{"AMPLIFY_S3_ENDPOINT"},
	}
	S3BucketOption = plugin.Option{
		Name: "amplify-s3-bucket",
		Help: "S3 bucket of the Amplify app's storage (the one amplify/backend/storage names).",
		Env:  []string{"AMPLIFY_S3_BUCKET"},
	}
)

// Config loads the AWS SDK configuration for cfg's region through the
// SDK's default credential chain. The SDK's own retries stay on (they
// honour AWS's throttling errors); callers add the project's retry policy
// around whole operations where a resumable position exists.
func Config(ctx context.Context, cfg plugin.Config) (aws.Config, error) {
	region := cfg.String(RegionOption.Name)
	if region == "" {
		region = RegionOption.Default
	}
	c, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration (region %s): %w", region, err)
	}
	return c, nil
}

// Endpoint returns the value of the endpoint option opt, checked to be an
// absolute http(s) URL, or "" when it is unset (AWS's own endpoint). The
// error names the option, not the value's user part.
func Endpoint(cfg plugin.Config, opt plugin.Option) (string, error) {
	v := cfg.String(opt.Name)
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--%s must be an http(s) URL such as http://127.0.0.1:8000", opt.Name)
	}
	if u.User != nil {
		return "", fmt.Errorf("--%s must not carry credentials; they come from the AWS credential chain", opt.Name)
	}
	return v, nil
}
