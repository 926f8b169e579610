package kratostest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	ory "github.com/ory/client-go"
	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/internal/kratostest"
)

// The contract: Ory's official Go SDK (github.com/ory/client-go, which
// Kratos' own go.mod uses as its client) must call the model, decode its
// answers, and meet the limits the model enforces.

func newClient(t *testing.T, opts kratostest.Options) (*kratostest.Server, *ory.APIClient) {
	t.Helper()
	s := kratostest.New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	cfg := ory.NewConfiguration()
	cfg.Servers = ory.ServerConfigurations{{URL: ts.URL}}
	cfg.HTTPClient = ts.Client()
	return s, ory.NewAPIClient(cfg)
}

func create(email, hashed string) ory.IdentityPatch {
	b := ory.NewCreateIdentityBody("default", map[string]interface{}{"email": email})
	b.MetadataAdmin = map[string]interface{}{"firebase_uid": "uid-" + strings.ToLower(email)}
	if hashed != "" {
		cfg := ory.NewIdentityWithCredentialsPasswordConfig()
		cfg.SetHashedPassword(hashed)
		pw := ory.NewIdentityWithCredentialsPassword()
		pw.SetConfig(*cfg)
		creds := ory.NewIdentityWithCredentials()
		creds.SetPassword(*pw)
		b.SetCredentials(*creds)
	}
	b.SetVerifiableAddresses([]ory.VerifiableIdentityAddress{*ory.NewVerifiableIdentityAddress("completed", email, true, "email")})
	p := ory.NewIdentityPatch()
	p.SetCreate(*b)
	return *p
}

func batch(patches ...ory.IdentityPatch) ory.PatchIdentitiesBody {
	b := ory.NewPatchIdentitiesBody()
	b.SetIdentities(patches)
	return *b
}

func status(t *testing.T, resp *http.Response, err error) int {
	t.Helper()
	if resp == nil {
		t.Fatalf("no answer: %v", err)
	}
	return resp.StatusCode
}

func TestContractBatchCreateListAndGet(t *testing.T) {
	ctx := context.Background()
	for _, version := range []string{kratostest.V131, kratostest.V254} {
		t.Run(version, func(t *testing.T) {
			s, c := newClient(t, kratostest.Options{Version: version})
			h, err := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			res, _, err := c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(
				create("Ann@Example.test", string(h)), create("bob@example.test", ""), create("carl@example.test", ""))).Execute()
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Identities) != 3 || res.Identities[0].GetAction() != "create" || res.Identities[0].GetIdentity() == "" {
				t.Fatalf("answer %+v", res.Identities)
			}
			ann := res.Identities[0].GetIdentity()

			// An address that differs only in case conflicts (409, for that
			// identity); a trait the schema refuses fails that identity (400).
			bad := ory.NewCreateIdentityBody("default", map[string]interface{}{"email": "no address"})
			badPatch := ory.NewIdentityPatch()
			badPatch.SetCreate(*bad)
			res, _, err = c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(
				create("dora@example.test", ""), create("ANN@example.TEST", ""), *badPatch)).Execute()
			if err != nil {
				t.Fatal(err)
			}
			codes := []string{}
			for _, r := range res.Identities {
				code := ""
				if e, ok := r.GetError().(map[string]interface{}); ok {
					code = fmt.Sprint(e["code"])
				}
				codes = append(codes, r.GetAction()+code)
			}
			if strings.Join(codes, " ") != "create error409 error400" {
				t.Fatalf("per-identity results %v, want create, error 409, error 400", codes)
			}
			_, resp, err := c.IdentityAPI.GetIdentity(ctx, res.Identities[0].GetIdentity()).Execute()
			if version == kratostest.V131 {
				// v1.3.1 rolled dora back with the conflicting batch.
				if got := status(t, resp, err); got != 404 {
					t.Errorf("v1.3.1: dora answered as created: GET status %d, want 404 (rolled back)", got)
				}
			} else if err != nil {
				t.Errorf("v25.4: dora: %v", err)
			}

			// Get, with and without the password's configuration.
			id, _, err := c.IdentityAPI.GetIdentity(ctx, ann).IncludeCredential([]string{"password"}).Execute()
			if err != nil {
				t.Fatal(err)
			}
			creds := id.GetCredentials()
			if id.GetSchemaId() != "default" || id.GetTraits().(map[string]interface{})["email"] != "Ann@Example.test" ||
				creds["password"].Config["hashed_password"] != string(h) || creds["password"].Identifiers[0] != "ann@example.test" ||
				id.MetadataAdmin["firebase_uid"] != "uid-ann@example.test" || id.GetState() != "active" ||
				len(id.VerifiableAddresses) != 1 || !id.VerifiableAddresses[0].Verified || id.VerifiableAddresses[0].Value != "ann@example.test" {
				t.Errorf("identity %+v", id)
			}
			id, _, err = c.IdentityAPI.GetIdentity(ctx, ann).Execute()
			if err != nil || id.GetCredentials()["password"].Config != nil {
				t.Errorf("without include_credential the password's config is shown: %v", err)
			}
			if _, resp, err := c.IdentityAPI.GetIdentity(ctx, "00000000-0000-0000-0000-000000000001").Execute(); status(t, resp, err) != 404 {
				t.Errorf("unknown id: status %d, want 404", resp.StatusCode)
			}
			if _, ok, err := s.VerifyPassword("ANN@example.test", []byte("right password")); !ok || err != nil {
				t.Errorf("the imported bcrypt hash does not verify: %v", err)
			}

			// List by credentials identifier (normalised), and page by page.
			list, _, err := c.IdentityAPI.ListIdentities(ctx).CredentialsIdentifier("  ANN@example.test ").Execute()
			if err != nil || len(list) != 1 || list[0].Id != ann {
				t.Fatalf("list by identifier: %v, %v", list, err)
			}
			seen := map[string]bool{}
			token := ""
			for pages := 0; ; pages++ {
				req := c.IdentityAPI.ListIdentities(ctx).PageSize(2)
				if token != "" {
					req = req.PageToken(token)
				}
				page, resp, err := req.Execute()
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range page {
					seen[i.Id] = true
				}
				token = nextToken(resp.Header.Get("Link"))
				if token == "" || pages > 10 {
					break
				}
			}
			if want := len(s.Identities()); len(seen) != want {
				t.Errorf("paging saw %d identities, want %d", len(seen), want)
			}
		})
	}
}

var nextLink = regexp.MustCompile(`<([^>]*)>; rel="next"`)

func nextToken(link string) string {
	m := nextLink.FindStringSubmatch(link)
	if m == nil {
		return ""
	}
	u, err := url.Parse(m[1])
	if err != nil {
		return ""
	}
	return u.Query().Get("page_token")
}

func TestContractLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("batch cap", func(t *testing.T) {
		for version, limit := range map[string]int{kratostest.V131: kratostest.BatchLimitV13, kratostest.V254: kratostest.BatchLimitV25} {
			_, c := newClient(t, kratostest.Options{Version: version})
			var ps []ory.IdentityPatch
			for i := range limit + 1 {
				ps = append(ps, create(fmt.Sprintf("u%d@example.test", i), ""))
			}
			_, resp, err := c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(ps...)).Execute()
			if status(t, resp, err) != 400 || !strings.Contains(errBody(err), fmt.Sprintf("at once is %d", limit)) {
				t.Errorf("%s: %d identities: %d %s, want 400", version, limit+1, resp.StatusCode, errBody(err))
			}
			if _, _, err := c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(ps[:limit]...)).Execute(); err != nil {
				t.Errorf("%s: %d identities: %v", version, limit, err)
			}
		}
	})
	t.Run("hash format", func(t *testing.T) {
		_, c := newClient(t, kratostest.Options{})
		_, resp, err := c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(
			create("a@example.test", "$2a$04$abcdefghijklmnopqrstuu5B0Ijg1O4bN8pB3HPrDBaXo1uWeYbh2"), create("b@example.test", "md5:abc"))).Execute()
		if status(t, resp, err) != 400 || !strings.Contains(errBody(err), "does not match any known hash format") {
			t.Errorf("an unknown hash form: %d %s, want 400 for the batch", resp.StatusCode, errBody(err))
		}
	})
	t.Run("external_id", func(t *testing.T) {
		withExt := func(email, ext string) ory.IdentityPatch {
			p := create(email, "")
			p.Create.SetExternalId(ext)
			return p
		}
		_, c := newClient(t, kratostest.Options{Version: kratostest.V131})
		_, resp, err := c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(withExt("a@example.test", "a"))).Execute()
		if status(t, resp, err) != 400 || !strings.Contains(errBody(err), `unknown field \"external_id\"`) {
			t.Errorf("v1.3.1 with external_id: %d %s, want 400 unknown field", resp.StatusCode, errBody(err))
		}
		s, c := newClient(t, kratostest.Options{Version: kratostest.V254})
		_, resp, err = c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(
			withExt("a@example.test", "a"), withExt("b@example.test", strings.Repeat("é", kratostest.MaxExternalIDLen+1)))).Execute()
		if status(t, resp, err) != 500 || len(s.Identities()) != 0 {
			t.Errorf("v25.4 with a 65-character external_id: %d, %d stored; want 500 and none", resp.StatusCode, len(s.Identities()))
		}
		res, _, err := c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(
			withExt("a@example.test", "a"), withExt("b@example.test", strings.Repeat("é", kratostest.MaxExternalIDLen)))).Execute()
		if err != nil || len(res.Identities) != 2 {
			t.Fatalf("v25.4 with 64-character external_ids: %v", err)
		}
		id, _, err := c.IdentityAPI.GetIdentity(ctx, res.Identities[1].GetIdentity()).Execute()
		if err != nil || id.GetExternalId() != strings.Repeat("é", 64) {
			t.Errorf("external_id read back: %v", err)
		}
		_, resp, err = c.IdentityAPI.BatchPatchIdentities(ctx).PatchIdentitiesBody(batch(withExt("c@example.test", "a"))).Execute()
		if status(t, resp, err) != 409 {
			t.Errorf("a duplicate external_id: %d, want 409 for the batch", resp.StatusCode)
		}
	})
	t.Run("token", func(t *testing.T) {
		_, c := newClient(t, kratostest.Options{Token: "t0ken"})
		if _, resp, err := c.IdentityAPI.ListIdentities(ctx).Execute(); status(t, resp, err) != 401 {
			t.Errorf("without the token: %d, want 401", resp.StatusCode)
		}
		ctx := context.WithValue(ctx, ory.ContextAccessToken, "t0ken")
		if _, _, err := c.IdentityAPI.ListIdentities(ctx).Execute(); err != nil {
			t.Errorf("with the token: %v", err)
		}
	})
}

func errBody(err error) string {
	var oe *ory.GenericOpenAPIError
	if e, ok := err.(*ory.GenericOpenAPIError); ok {
		oe = e
	}
	if oe == nil {
		return fmt.Sprint(err)
	}
	return string(oe.Body())
}
