// Package firebase holds what the Firebase extractors (Firestore, Auth,
// Storage) share: the project and credential options and how they become
// Google API client options.
package firebase

import (
	"fmt"
	"os"

	"google.golang.org/api/option"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

// ProjectOption names the Firebase (Google Cloud) project.
var ProjectOption = plugin.Option{
	Name:     "firebase-project",
	Help:     "Firebase project ID to migrate from.",
	Env:      []string{"GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT"},
	Required: true,
}

// CredentialsOption points at a service-account key file for a real
// project. The file's content is a secret; its path is not.
var CredentialsOption = plugin.Option{
	Name: "credentials",
	Help: "Service-account key file (JSON) for a real Firebase project; not needed with emulators.",
	Env:  []string{"GOOGLE_APPLICATION_CREDENTIALS"},
}

// ClientOptions returns the Google API client options for cfg: the
// service-account key when one is given, else Application Default
// Credentials. Emulators are configured by each client from its own
// environment variable.
func ClientOptions(cfg plugin.Config) ([]option.ClientOption, error) {
	path := cfg.String(CredentialsOption.Name)
	if path == "" {
		return nil, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--credentials: %w", err)
	}
	return []option.ClientOption{option.WithAuthCredentialsFile(option.ServiceAccount, path)}, nil
}
