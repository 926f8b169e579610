package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
)

// SetSoftDeletes makes Prepare (and PlannedDDL) add the column
// loaders.DeletedAtColumn to the files table, which Delete with soft set
// marks. Call it before Prepare.
func (f *Files) SetSoftDeletes(on bool) { f.soft.on = on }

// SetBucket makes Delete remove only rows of bucket. Without it, Delete
// removes the row of the object name in whatever bucket it is, and
// rejects a name that rows of two buckets of the same store have.
func (f *Files) SetBucket(bucket string) { f.bucket = bucket }

// filesDetected rebuilds the upsert for whether the files table has the
// deletion-time column: an object written again is live.
func (f *Files) filesDetected(has bool) {
	names := make([]string, 0, len(fileColumns)+1)
	types := make([]string, 0, len(fileColumns)+1)
	for _, c := range fileColumns {
		names, types = append(names, c.name), append(types, c.ddlType)
	}
	if has {
		names, types = append(names, loaders.DeletedAtColumn), append(types, "timestamptz")
	}
	f.def = newTableDef(f.name, names, types, []string{"bucket", "name"})
}

// liveRow is row, plus a NULL deletion time when the table has the column.
func (f *Files) liveRow(file record.File, key string) []any {
	r := f.row(file, key)
	if f.soft.marked() {
		r = append(r, nil)
	}
	return r
}

// Delete removes the metadata rows of the objects named keys, in the
// store f writes into (see loaders.Deleter and SetBucket).
//
// Hard: the row goes, and with it the object's hold on its key in the
// store (baasmigrate.object_keys); the bytes stay until Purge, which the
// engine calls after the transaction committed. Soft: the row gets
// loaders.DeletedAtColumn set to at (a row already marked keeps its first
// time) and the bytes and the key stay; readers (verify) treat the row as
// absent and a later Write of the object clears the mark. Soft deletes
// need the column: SetSoftDeletes(true) before Prepare.
//
// A name the table cannot hold, and, without SetBucket, a name that rows
// of two buckets have, are rejected with the reason. Rows are locked in
// (bucket, name) order.
func (f *Files) Delete(ctx context.Context, tx pgx.Tx, keys []string, at time.Time, soft bool) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(keys))}
	if err := f.soft.detect(ctx, tx); err != nil {
		return out, err
	}
	index := map[string][]int{} // name → indexes in keys
	var names []string
	for i, name := range keys {
		out.Tables[i] = f.label
		if why := record.TextProblem(name); why != "" {
			out.Reject(i, fmt.Sprintf("cannot delete object %q: its name %s, which the files table's text key cannot hold", name, why))
			continue
		}
		if len(index[name]) == 0 {
			names = append(names, name)
		}
		index[name] = append(index[name], i)
	}
	if len(names) == 0 {
		return out, nil
	}
	if soft && !f.soft.marked() {
		return out, fmt.Errorf("soft-deleting objects: %s has no %s column; call SetSoftDeletes(true) before Prepare",
			f.name.Sanitize(), loaders.DeletedAtColumn)
	}
	slices.Sort(names)
	where := `target = $1 AND name = ANY($2::text[])`
	args := []any{f.store.String(), names}
	if f.bucket != "" {
		where += ` AND bucket = $3`
		args = append(args, f.bucket)
	}
	rows, err := tx.Query(ctx, `SELECT bucket, name FROM `+f.name.Sanitize()+` WHERE `+where+
		` ORDER BY bucket COLLATE "C", name COLLATE "C" FOR UPDATE`, args...)
	if err != nil {
		return out, fmt.Errorf("locking the rows of %d objects to delete: %w", len(names), err)
	}
	type object struct{ Bucket, Name string }
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[object])
	if err != nil {
		return out, fmt.Errorf("locking the rows of %d objects to delete: %w", len(names), err)
	}
	buckets := map[string][]string{}
	for _, o := range found {
		buckets[o.Name] = append(buckets[o.Name], o.Bucket)
	}
	var delBuckets, delNames []string
	for _, name := range names {
		switch b := buckets[name]; {
		case len(b) > 1:
			for _, i := range index[name] {
				out.Reject(i, fmt.Sprintf("cannot delete object %q: %s has rows of it in buckets %q; the sink must be told the bucket (SetBucket)",
					name, f.name.Sanitize(), b))
			}
		case len(b) == 1:
			delBuckets, delNames = append(delBuckets, b[0]), append(delNames, name)
		}
	}
	if len(delNames) == 0 {
		return out, nil
	}
	match := `target = $1 AND (bucket, name) IN (SELECT * FROM unnest($2::text[], $3::text[]))`
	if soft {
		mark := pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()
		tag, err := tx.Exec(ctx, `UPDATE `+f.name.Sanitize()+` SET `+mark+` = $4 WHERE `+match+` AND `+mark+` IS NULL`,
			f.store.String(), delBuckets, delNames, at)
		if err != nil {
			return out, fmt.Errorf("marking %d objects deleted: %w", len(delNames), err)
		}
		if n := tag.RowsAffected(); n > 0 {
			out.AddChanged(f.label, n)
		}
		return out, nil
	}
	tag, err := tx.Exec(ctx, `DELETE FROM `+f.name.Sanitize()+` WHERE `+match, f.store.String(), delBuckets, delNames)
	if err != nil {
		return out, fmt.Errorf("deleting the rows of %d objects: %w", len(delNames), err)
	}
	if n := tag.RowsAffected(); n > 0 {
		out.AddChanged(f.label, n)
	}
	_, err = tx.Exec(ctx, `DELETE FROM `+StateSchema+`.object_keys WHERE target = $1
		AND (bucket, name) IN (SELECT convert_to(b, 'UTF8'), convert_to(n, 'UTF8') FROM unnest($2::text[], $3::text[]) AS u(b, n))`,
		f.store.String(), delBuckets, delNames)
	if err != nil {
		return out, fmt.Errorf("releasing the target keys of %d deleted objects: %w", len(delNames), err)
	}
	return out, nil
}

// Purge removes from the store the bytes of the objects named keys, whose
// rows a committed hard Delete removed (see loaders.Purger). It removes
// only keys nothing holds: for each it takes the key's hold in
// baasmigrate.object_keys (every row of the table holds its key there),
// in a transaction it rolls back at the end, so that a key a row or a
// batch (committed, or still writing: it waits for it) holds again is
// left alone, and no batch copies onto
// the key while its bytes are removed. An absent object is no error. It
// needs the database Prepare was given.
func (f *Files) Purge(ctx context.Context, keys []string) error {
	if f.db == nil {
		return errors.New("purging deleted objects: the files sink was not prepared")
	}
	var folds, targetKeys, buckets, names [][]byte
	var storeKeys []string
	seen := map[string]bool{}
	for _, name := range keys {
		if seen[name] || record.TextProblem(name) != "" {
			continue // nothing was stored under a name the table cannot hold
		}
		seen[name] = true
		key := f.store.Key(name)
		folds = append(folds, foldDigest(f.store.Fold(key)))
		targetKeys, buckets, names = append(targetKeys, []byte(key)), append(buckets, []byte(f.bucket)), append(names, []byte(name))
		storeKeys = append(storeKeys, key)
	}
	if len(storeKeys) == 0 {
		return nil
	}
	tx, err := f.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("purging deleted objects: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Sorted by fold, so that two purges take the holds in one order.
	order := make([]int, len(folds))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return slices.Compare(folds[a], folds[b]) })
	sorted := func(in [][]byte) [][]byte {
		out := make([][]byte, len(in))
		for i, j := range order {
			out[i] = in[j]
		}
		return out
	}
	rows, err := tx.Query(ctx, `INSERT INTO `+StateSchema+`.object_keys (target, fold_sha256, target_key, bucket, name)
		SELECT $1, f, k, b, n FROM unnest($2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[]) AS u(f, k, b, n)
		ON CONFLICT DO NOTHING RETURNING convert_from(target_key, 'UTF8')`,
		f.store.String(), sorted(folds), sorted(targetKeys), sorted(buckets), sorted(names))
	if err != nil {
		return fmt.Errorf("purging deleted objects: taking their keys: %w", err)
	}
	free, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("purging deleted objects: taking their keys: %w", err)
	}
	if err := f.store.Remove(ctx, free); err != nil {
		return fmt.Errorf("purging %d deleted objects (their bytes stay in the store, orphaned): %w", len(free), err)
	}
	return nil
}
