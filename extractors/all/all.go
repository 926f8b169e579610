// Package all registers every source's extractors: importing it (for its
// side effects) makes each of them available to extractors.ForKind. A new
// source adds one import line here.
package all

import (
	_ "github.com/baasmigrate/baasmigrate/extractors/amplifystorage"
	_ "github.com/baasmigrate/baasmigrate/extractors/cognito"
	_ "github.com/baasmigrate/baasmigrate/extractors/dynamodb"
	_ "github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	_ "github.com/baasmigrate/baasmigrate/extractors/firestore"
	_ "github.com/baasmigrate/baasmigrate/extractors/gcs"
	_ "github.com/baasmigrate/baasmigrate/extractors/supabaseauth"
	_ "github.com/baasmigrate/baasmigrate/extractors/supabasestorage"
	_ "github.com/baasmigrate/baasmigrate/extractors/supabasetables"
)
