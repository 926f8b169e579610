package firestoreemu_test

// The suite drives the emulator only through the official clients, so it
// runs unchanged against any Firestore emulator: with FIRESTORE_EMULATOR_HOST
// set it uses that emulator, otherwise it starts this one in-process on a
// free loopback port. Every test uses its own project. Tests of the
// baasmigrate hooks skip on emulators that do not serve them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	vkit "cloud.google.com/go/firestore/apiv1"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
)

// emulatorHost is the host:port of the emulator under test.
var emulatorHost string

// inProcess is true when this test binary started the emulator.
var inProcess bool

func TestMain(m *testing.M) {
	emulatorHost = os.Getenv("FIRESTORE_EMULATOR_HOST")
	var emu *firestoreemu.Emulator
	if emulatorHost == "" {
		var err error
		emu, err = firestoreemu.Start("127.0.0.1:0", firestoreemu.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		emulatorHost = emu.Addr()
		inProcess = true
		os.Setenv("FIRESTORE_EMULATOR_HOST", emulatorHost)
	}
	code := m.Run()
	if emu != nil {
		emu.Close()
	}
	os.Exit(code)
}

var projectSeq atomic.Int64

// newProject returns a project ID no other test uses.
func newProject(t testing.TB) string {
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano()%1e9, projectSeq.Add(1))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newClient connects the official client the way users do, through
// FIRESTORE_EMULATOR_HOST, to a fresh project.
func newClient(t testing.TB) (*firestore.Client, string) {
	t.Helper()
	project := newProject(t)
	return clientFor(t, project, firestore.DefaultDatabaseID), project
}

func clientFor(t testing.TB, project, database string) *firestore.Client {
	t.Helper()
	c, err := firestore.NewClientWithDatabase(context.Background(), project, database)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientAt connects the official client to an explicit address (its own
// connection overrides the one FIRESTORE_EMULATOR_HOST would make).
func clientAt(t testing.TB, addr, project string) *firestore.Client {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	c, err := firestore.NewClient(context.Background(), project, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatalf("NewClient(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// newRawClient returns the generated apiv1 client for protocol-level tests.
func newRawClient(t testing.TB) *vkit.Client {
	t.Helper()
	return rawClientAt(t, emulatorHost)
}

func rawClientAt(t testing.TB, addr string) *vkit.Client {
	t.Helper()
	c, err := vkit.NewClient(context.Background(),
		option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatalf("apiv1.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hooks returns the hooks client, skipping the test on an emulator without
// baasmigrate hooks.
func hooks(t testing.TB) *firestoreemu.Hooks {
	t.Helper()
	h := firestoreemu.HooksFor(emulatorHost)
	if _, err := h.Info(testContext(t)); err != nil {
		if errors.Is(err, firestoreemu.ErrNotBaasmigrate) {
			t.Skipf("emulator at %s does not serve baasmigrate hooks", emulatorHost)
		}
		t.Fatalf("hooks info: %v", err)
	}
	return h
}

// requireInProcess skips tests that need their own emulator instance.
func requireInProcess(t testing.TB) {
	t.Helper()
	if !inProcess {
		t.Skip("needs an in-process emulator (FIRESTORE_EMULATOR_HOST is set)")
	}
}

func dbPath(project string) string { return "projects/" + project + "/databases/(default)" }

func docName(project, path string) string { return dbPath(project) + "/documents/" + path }

func wantCode(t testing.TB, err error, want codes.Code, what string) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: got code %v (err %v), want %v", what, got, err, want)
	}
}

func mustSet(t testing.TB, ctx context.Context, d *firestore.DocumentRef, data any, opts ...firestore.SetOption) *firestore.WriteResult {
	t.Helper()
	wr, err := d.Set(ctx, data, opts...)
	if err != nil {
		t.Fatalf("Set %s: %v", d.Path, err)
	}
	return wr
}

func mustGet(t testing.TB, ctx context.Context, d *firestore.DocumentRef) *firestore.DocumentSnapshot {
	t.Helper()
	s, err := d.Get(ctx)
	if err != nil {
		t.Fatalf("Get %s: %v", d.Path, err)
	}
	return s
}

// ids runs a query and returns the result document IDs in order.
func ids(t testing.TB, ctx context.Context, q firestore.Query) []string {
	t.Helper()
	docs, err := q.Documents(ctx).GetAll()
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Ref.ID
	}
	return out
}

// paths runs a query and returns the result document paths (relative).
func paths(t testing.TB, ctx context.Context, it *firestore.DocumentIterator) []string {
	t.Helper()
	var out []string
	for {
		d, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("iterating: %v", err)
		}
		out = append(out, relPathOf(d.Ref))
	}
}

func relPathOf(d *firestore.DocumentRef) string {
	_, rel, _ := strings.Cut(d.Path, "/documents/")
	return rel
}

func eq[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeDocs writes path → fields with raw Commits of 500 writes each (the
// way a bulk loader would). Values may be string, int, float64 or bool.
func writeDocs(t testing.TB, ctx context.Context, raw *vkit.Client, project string, docs map[string]map[string]any) {
	t.Helper()
	var writes []*pb.Write
	flush := func() {
		if len(writes) > 0 {
			rawCommit(t, ctx, raw, project, writes...)
			writes = writes[:0]
		}
	}
	for p, d := range docs {
		writes = append(writes, &pb.Write{Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, p), Fields: pbFields(d)}}})
		if len(writes) == 500 {
			flush()
		}
	}
	flush()
}

func pbFields(m map[string]any) map[string]*pb.Value {
	out := map[string]*pb.Value{}
	for k, v := range m {
		out[k] = pbValue(v)
	}
	return out
}

func pbValue(v any) *pb.Value {
	switch x := v.(type) {
	case string:
		return &pb.Value{ValueType: &pb.Value_StringValue{StringValue: x}}
	case int:
		return &pb.Value{ValueType: &pb.Value_IntegerValue{IntegerValue: int64(x)}}
	case int64:
		return &pb.Value{ValueType: &pb.Value_IntegerValue{IntegerValue: x}}
	case float64:
		return &pb.Value{ValueType: &pb.Value_DoubleValue{DoubleValue: x}}
	case bool:
		return &pb.Value{ValueType: &pb.Value_BooleanValue{BooleanValue: x}}
	case []any:
		var vs []*pb.Value
		for _, e := range x {
			vs = append(vs, pbValue(e))
		}
		return &pb.Value{ValueType: &pb.Value_ArrayValue{ArrayValue: &pb.ArrayValue{Values: vs}}}
	case map[string]any:
		return &pb.Value{ValueType: &pb.Value_MapValue{MapValue: &pb.MapValue{Fields: pbFields(x)}}}
	case *pb.Value:
		return x
	}
	panic(fmt.Sprintf("pbValue: unsupported %T", v))
}

// rawCommit commits writes through the raw client.
func rawCommit(t testing.TB, ctx context.Context, raw *vkit.Client, project string, writes ...*pb.Write) *pb.CommitResponse {
	t.Helper()
	res, err := raw.Commit(ctx, &pb.CommitRequest{Database: dbPath(project), Writes: writes})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return res
}

// codeOf returns the gRPC code of an error from the clients.
func codeOf(err error) codes.Code { return status.Code(err) }

var errTestRollback = errors.New("test asks for a rollback")
