package amplify

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

// S3Client returns the S3 client (minio-go) of the Amplify extractors: of
// --amplify-s3-endpoint, which must be an endpoint's root URL (no path or
// query), or else of AWS's endpoint for awsCfg's region, with awsCfg's
// credentials (S3Credentials). given is the endpoint's host, "" for AWS's
// own. It contacts nothing.
func S3Client(ctx context.Context, cfg plugin.Config, awsCfg aws.Config) (client *minio.Client, given string, err error) {
	endpoint, err := Endpoint(cfg, S3EndpointOption)
	if err != nil {
		return nil, "", err
	}
	host, secure := "s3."+awsCfg.Region+".amazonaws.com", true
	if endpoint != "" {
		u, _ := url.Parse(endpoint) // checked by Endpoint
		if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return nil, "", fmt.Errorf("--%s must be the endpoint's root URL (no path or query)", S3EndpointOption.Name)
		}
		host, secure, given = u.Host, u.Scheme == "https", u.Host
	}
	client, err = minio.New(host, &minio.Options{
		Creds:  S3Credentials(ctx, awsCfg),
		Secure: secure, Region: awsCfg.Region, BucketLookup: minio.BucketLookupAuto,
	})
	if err != nil {
		return nil, "", fmt.Errorf("making the S3 client of %s: %w", host, err)
	}
	return client, given, nil
}
