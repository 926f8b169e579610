package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
)

// ddbSyncState is the documents stream's stored position and the changes
// applied so far ("" and 0 before sync follows).
func ddbSyncState(t *testing.T, pool *pgxpool.Pool) (position string, applied int64) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT position, applied FROM baasmigrate.sync_streams WHERE kind = 'document'`).Scan(&position, &applied)
	if err != nil && err != pgx.ErrNoRows && !strings.Contains(err.Error(), "does not exist") {
		t.Fatal(err)
	}
	return position, applied
}

// ddbWriter changes DynamoDB Local's items for the sync test.
type ddbWriter struct {
	c *dynamodb.Client
}

// update puts Item(i) again with a new title, version and change time.
func (w ddbWriter) update(ctx context.Context, table string, i int, title string, version int) error {
	item, _ := dynamodbtest.Item(i)
	item["title"] = &types.AttributeValueMemberS{Value: title}
	item["_version"] = &types.AttributeValueMemberN{Value: fmt.Sprint(version)}
	item["_lastChangedAt"] = &types.AttributeValueMemberN{Value: fmt.Sprint(1_800_000_000_000 + version)}
	_, err := w.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	return err
}

// tombstone marks Item(i) deleted the way Amplify DataStore does.
func (w ddbWriter) tombstone(ctx context.Context, table string, i int) error {
	item, _ := dynamodbtest.Item(i)
	item["_deleted"] = &types.AttributeValueMemberBOOL{Value: true}
	_, err := w.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	return err
}

func (w ddbWriter) remove(ctx context.Context, table string, key map[string]types.AttributeValue) error {
	_, err := w.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key})
	return err
}

func (w ddbWriter) insert(ctx context.Context, table string, i int) error {
	item, _ := dynamodbtest.Item(i)
	return dynamodbtest.Put(ctx, w.c, table, []map[string]types.AttributeValue{item})
}

func itemKey(i int) map[string]types.AttributeValue {
	item, _ := dynamodbtest.Item(i)
	return map[string]types.AttributeValue{"id": item["id"]}
}

func ownerItem(owner string, at, v int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"owner": &types.AttributeValueMemberS{Value: owner},
		"at":    &types.AttributeValueMemberN{Value: fmt.Sprint(at)},
		"v":     &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
		"tags":  &types.AttributeValueMemberSS{Value: []string{"b", "a"}},
	}
}

// TestAmplifySyncDynamoDB: sync of two DynamoDB tables (one with a sort
// key) copies them while a writer changes them, then follows their
// DynamoDB Streams: inserts, updates, deletes and an Amplify DataStore
// tombstone (whose row goes) arrive in the target. Killed with SIGKILL
// while it applies a stream of writes and started again, it goes on from
// its stored position; cutover (sync running) exits 0, and verify finds
// source and target identical.
func TestAmplifySyncDynamoDB(t *testing.T) {
	ctx := context.Background()
	ep := dynamodbtest.Endpoint(t)
	c := dynamodbtest.Client(ep)
	todos := dynamodbtest.StreamTable(t, c, types.StreamViewTypeNewAndOldImages, "id", "S", "", "")
	owned := dynamodbtest.StreamTable(t, c, types.StreamViewTypeNewAndOldImages, "owner", "S", "at", "N")
	const n = 2000
	if err := dynamodbtest.Seed(ctx, c, todos, 0, n); err != nil {
		t.Fatal(err)
	}
	var seed []map[string]types.AttributeValue
	for i := range 200 {
		seed = append(seed, ownerItem(fmt.Sprintf("o/%d", i%7), i, 0))
	}
	if err := dynamodbtest.Put(ctx, c, owned, seed); err != nil {
		t.Fatal(err)
	}
	dsn, pool := targetDatabase(t)
	env := ddbEnv(dsn, ep)
	common := []string{"--source", "amplify", "--only", "documents", "--dynamodb-tables", todos + "," + owned}
	syncArgs := append([]string{"sync", "-v", "--batch-size", "50", "--status-interval", "0", "--workers", "2", "--dynamodb-page-size", "25"}, common...)
	w := ddbWriter{c: c}

	// Written while sync copies: updates, inserts and deletes the copy
	// may or may not read, which the stream delivers again.
	stop := make(chan struct{})
	var during sync.WaitGroup
	during.Add(1)
	var duringErr error
	duringWrites := 0
	go func() {
		defer during.Done()
		for i := 0; i < 1500; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := w.update(ctx, todos, (i*7)%n, fmt.Sprintf("during %d", i), 10+i)
			if err == nil {
				err = w.insert(ctx, todos, n+i)
			}
			if err == nil && i%5 == 0 {
				err = w.remove(ctx, todos, itemKey(1000+(i*13)%n/2))
			}
			if err == nil && i%3 == 0 {
				_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(owned), Item: ownerItem(fmt.Sprintf("o/%d", i%7), i%200, i)})
			}
			if err != nil {
				duringErr = err
				return
			}
			duringWrites++
		}
	}()
	p := clitest.Start(t, env, syncArgs...)
	waitSync(t, p, "following the DynamoDB streams", func() bool {
		pos, _ := ddbSyncState(t, pool)
		return strings.HasPrefix(pos, "ddbstreams1:")
	})
	close(stop)
	during.Wait()
	if duringErr != nil {
		t.Fatal(duringErr)
	}
	t.Logf("%d rounds of writes while sync copied", duringWrites)

	// After the copy: each kind of change, checked in the target.
	_, before := ddbSyncState(t, pool)
	steps := []func() error{
		func() error { return w.update(ctx, todos, 1, "after the copy", 99999) },
		func() error { return w.remove(ctx, todos, itemKey(2)) },
		func() error { return w.tombstone(ctx, todos, 3) },
		func() error { return w.insert(ctx, todos, 9000) },
		func() error {
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(owned), Item: ownerItem("o/1", 1, 777)})
			return err
		},
		func() error {
			return w.remove(ctx, owned, map[string]types.AttributeValue{"owner": &types.AttributeValueMemberS{Value: "o/2"}, "at": &types.AttributeValueMemberN{Value: "2"}})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	tbl := ddbTargetTable(t, pool, todos)
	row := func(i int) (title string, present bool) {
		t.Helper()
		err := pool.QueryRow(ctx, `SELECT title FROM `+tbl+` WHERE id = $1`, dynamodbtest.DocID(i)).Scan(&title)
		if err == pgx.ErrNoRows {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		return title, true
	}
	waitSync(t, p, "the changes after the copy", func() bool {
		_, applied := ddbSyncState(t, pool)
		title, _ := row(1)
		_, two := row(2)
		_, three := row(3)
		_, added := row(9000)
		return applied >= before+int64(len(steps)) && title == "after the copy" && !two && !three && added
	})

	// A stream of writes; sync is killed -9 while it applies them.
	_, before = ddbSyncState(t, pool)
	var wg sync.WaitGroup
	wg.Add(1)
	var writeErr error
	const writes = 300
	go func() {
		defer wg.Done()
		for i := range writes {
			err := w.update(ctx, todos, 100+i%60, fmt.Sprintf("stream %d", i), 100000+i)
			if err == nil && i%10 == 0 {
				err = w.tombstone(ctx, todos, 400+i)
			}
			if err == nil && i%15 == 0 {
				err = w.remove(ctx, owned, map[string]types.AttributeValue{"owner": &types.AttributeValueMemberS{Value: fmt.Sprintf("o/%d", (i/15)%7)}, "at": &types.AttributeValueMemberN{Value: fmt.Sprint(i / 15)}})
			}
			if err != nil {
				writeErr = err
				return
			}
		}
	}()
	waitSync(t, p, "applying the writer's changes", func() bool {
		_, applied := ddbSyncState(t, pool)
		return applied >= before+40
	})
	p.Kill()
	pos, applied := ddbSyncState(t, pool)
	t.Logf("sync killed -9 after %d changes", applied)
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	if err := w.update(ctx, todos, 5, "after the kill", 200000); err != nil {
		t.Fatal(err)
	}

	p = clitest.Start(t, env, syncArgs...)
	waitSync(t, p, "following again, to the write after the kill", func() bool {
		now, _ := ddbSyncState(t, pool)
		title, _ := row(5)
		return now != pos && title == "after the kill"
	})
	res := clitest.Run(t, env, append([]string{"cutover"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("cutover with sync running: exit %d\n%s\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
	}
	stopSync(t, p)
	res = clitest.Run(t, env, append([]string{"verify"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("verify after the cutover: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, i := range []int{3, 400, 490} {
		if _, present := row(i); present {
			t.Errorf("item %d, an Amplify tombstone now, still has a row", i)
		}
	}

	// A stored position the streams can no longer serve (its streams are
	// not the tables' own, as after streams were disabled and enabled
	// again): sync catches up by a snapshot comparison, which applies
	// what changed meanwhile (an update, a delete), then streams again.
	if _, err := pool.Exec(ctx, `UPDATE baasmigrate.sync_streams SET position = replace(position, '/stream/', '/stream/gone-') WHERE kind = 'document'`); err != nil {
		t.Fatal(err)
	}
	if err := w.update(ctx, todos, 6, "while stopped", 300000); err != nil {
		t.Fatal(err)
	}
	if err := w.remove(ctx, todos, itemKey(7)); err != nil {
		t.Fatal(err)
	}
	p = clitest.Start(t, env, syncArgs...)
	if !p.WaitStderr(t, "caught up at", 2*time.Minute) {
		t.Fatalf("sync from a position of other streams did not catch up by comparison:\n%s", syncTail(p.Stderr(), 40))
	}
	if log := p.Stderr(); !strings.Contains(log, "1 records written or offered, 1 deleted") {
		t.Errorf("the catch-up did not apply exactly the update and the delete made while sync was stopped:\n%s", syncTail(log, 20))
	}
	if err := w.update(ctx, todos, 8, "after the catch-up", 300001); err != nil {
		t.Fatal(err)
	}
	waitSync(t, p, "the write after the catch-up", func() bool {
		title, _ := row(8)
		return title == "after the catch-up"
	})
	if title, _ := row(6); title != "while stopped" {
		t.Errorf("item 6 after the catch-up: %q", title)
	}
	if _, present := row(7); present {
		t.Error("item 7, deleted while sync was stopped, still has a row after the catch-up")
	}
	res = clitest.Run(t, env, append([]string{"cutover"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("cutover after the catch-up: exit %d\n%s\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
	}
	stopSync(t, p)
}

// ddbTargetTable returns the quoted target table of DynamoDB table name
// (a unique name: the table whose name ends with its random suffix).
func ddbTargetTable(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	suffix := name[strings.LastIndex(name, "_")+1:]
	var got []string
	rows, err := pool.Query(context.Background(), `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE '%' || $1`, suffix)
	if err == nil {
		got, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(got) != 1 {
		t.Fatalf("finding the target table of %s: %v, %v", name, got, err)
	}
	return pgx.Identifier{"public", got[0]}.Sanitize()
}
