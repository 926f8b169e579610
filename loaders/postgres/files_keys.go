package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
)

// keysDDL creates the tables that record which object owns which key of
// an object store, and which jobs write into it. Object names are kept as
// bytea: any byte a source allows (NUL, invalid UTF-8) fits.
//
// object_keys has one row per key in use, keyed by the SHA-256 of the key
// as the store compares keys (Store.Fold: the key itself, or folded for a
// case-insensitive directory; hashed, as a key may be longer than an index
// entry can be): two objects of one fold are one object in the store. A row
// is inserted in a batch's transaction before its object is copied, so a
// concurrent batch wanting the same fold waits for that transaction, and
// it commits with the object's metadata row: after a crash, nothing of an
// uncommitted batch holds a key. rivals lists the objects rejected because
// they would have landed on the key.
//
// object_targets has one row per job (owner: its source) writing into an
// object store, with how the store compares keys.
var keysDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS ` + StateSchema,
	`CREATE TABLE IF NOT EXISTS ` + StateSchema + `.object_keys (
		target     text   NOT NULL,
		fold_sha256 bytea NOT NULL,
		target_key bytea  NOT NULL,
		bucket     bytea  NOT NULL,
		name       bytea  NOT NULL,
		rivals     text[] NOT NULL DEFAULT '{}',
		PRIMARY KEY (target, fold_sha256)
	)`,
	`CREATE TABLE IF NOT EXISTS ` + StateSchema + `.object_targets (
		target     text        NOT NULL,
		owner      text        NOT NULL,
		comparison text        NOT NULL,
		since      timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (target, owner)
	)`,
}

// SetOwner names the job writing through f (its source, as in
// migration.Job) and whether it may write into an object store another
// job's objects are in. Without an owner, f does not check ownership.
func (f *Files) SetOwner(owner string, shareTarget bool) {
	f.owner, f.shareTarget = owner, shareTarget
}

// prepareKeys creates the key tables, records f's owner of the store
// (refusing a store another job writes into unless shareTarget), checks
// that the store compares keys as it did when first written, and claims
// the keys of rows written before the key table existed. The store must be
// prepared (its comparison probed).
func (f *Files) prepareKeys(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate object keys'))`); err != nil {
		return err
	}
	for _, s := range keysDDL {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	target, cmp := f.store.String(), f.store.Comparison().String()
	rows, err := tx.Query(ctx, `SELECT owner, comparison FROM `+StateSchema+`.object_targets WHERE target = $1 ORDER BY since`, target)
	if err != nil {
		return err
	}
	type writer struct{ Owner, Comparison string }
	writers, err := pgx.CollectRows(rows, pgx.RowToStructByPos[writer])
	if err != nil {
		return err
	}
	var others []string
	for _, w := range writers {
		if w.Comparison != cmp {
			return fmt.Errorf("%s compared object keys %s when it was first written, and compares them %s now "+
				"(--objects-case-insensitive changed, or the directory is on another file system); "+
				"use the setting of the first run, or another target", target, w.Comparison, cmp)
		}
		if w.Owner != f.owner {
			others = append(others, w.Owner)
		}
	}
	if f.owner != "" && len(others) > 0 && !f.shareTarget {
		return fmt.Errorf("%s holds the objects of another job (%s); this job (%s) writes there only with --share-target "+
			"(key collisions between the jobs are then rejected), or choose another bucket or directory",
			target, strings.Join(others, ", "), f.owner)
	}
	if f.owner != "" {
		if _, err := tx.Exec(ctx, `INSERT INTO `+StateSchema+`.object_targets (target, owner, comparison) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, target, f.owner, cmp); err != nil {
			return err
		}
	}
	// Rows of objects copied before keys were recorded.
	rows, err = tx.Query(ctx, `SELECT convert_to(bucket, 'UTF8'), convert_to(name, 'UTF8'), convert_to(target_key, 'UTF8') FROM `+f.name.Sanitize()+` t
		WHERE target = $1 AND NOT EXISTS (SELECT 1 FROM `+StateSchema+`.object_keys k
			WHERE k.target = t.target AND k.bucket = convert_to(t.bucket, 'UTF8') AND k.name = convert_to(t.name, 'UTF8'))`, target)
	if err != nil {
		return err
	}
	defer rows.Close()
	var folds, keys, buckets, names [][]byte
	for rows.Next() {
		var b, n, k []byte
		if err := rows.Scan(&b, &n, &k); err != nil {
			return err
		}
		folds, keys, buckets, names = append(folds, foldDigest(f.store.Fold(string(k)))), append(keys, k), append(buckets, b), append(names, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	if len(folds) > 0 {
		_, err = tx.Exec(ctx, `INSERT INTO `+StateSchema+`.object_keys (target, fold_sha256, target_key, bucket, name)
			SELECT $1, f, k, b, n FROM unnest($2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[]) AS u(f, k, b, n)
			ON CONFLICT DO NOTHING`, target, folds, keys, buckets, names)
	}
	return err
}

// claim is a record's hold on its key.
type claim struct {
	fold []byte
	// fresh is set when this batch's transaction inserted the key's row:
	// nothing this tool knows of was written there before.
	fresh bool
}

// claimKeys takes, in tx, the key of every record of recs the store would
// try to copy, before any is copied. It returns the records rejected
// because another object lands on the same key — within the batch (all of
// them are rejected, each naming the others) or already holding it (this
// one is rejected, naming it, and recorded among the key's rivals) — and
// the claims of the others. files[i] is recs[i] decoded (decodeFiles), nil
// when it is not a file. A record whose row the table cannot hold
// (rowProblem) is rejected with that reason and claims nothing; one the
// store rejects by itself (not a file, a key it cannot hold) gets neither.
func (f *Files) claimKeys(ctx context.Context, tx pgx.Tx, recs []record.Record, files []*record.File) (map[int]string, map[int]claim, error) {
	type want struct {
		i            int
		file         record.File
		key          string
		fold         []byte
		bucket, name []byte
	}
	var wants []want
	byFold := map[string][]int{} // fold → indexes in wants
	rejects := map[int]string{}
	for i := range recs {
		if files[i] == nil {
			continue // the store rejects it with the reason
		}
		file := *files[i]
		if reason := rowProblem(file); reason != "" {
			rejects[i] = reason // before the store's own problem, as Layout
			continue
		}
		if f.store.Problem(file) != "" {
			continue // the store rejects it with the reason
		}
		key := f.store.Key(file.Name)
		fold := string(foldDigest(f.store.Fold(key)))
		byFold[fold] = append(byFold[fold], len(wants))
		wants = append(wants, want{i: i, file: file, key: key, fold: []byte(fold), bucket: []byte(file.Bucket), name: []byte(file.Name)})
	}
	cmp := f.store.Comparison()
	var folds, keys, buckets, names [][]byte
	for fold, idx := range byFold {
		// The same object twice is no collision: its first record claims.
		distinct := idx[:1]
		for _, j := range idx[1:] {
			if !slices.ContainsFunc(distinct, func(k int) bool {
				return bytes.Equal(wants[k].bucket, wants[j].bucket) && bytes.Equal(wants[k].name, wants[j].name)
			}) {
				distinct = append(distinct, j)
			}
		}
		if len(distinct) > 1 {
			for _, j := range idx {
				var others []string
				for _, k := range idx {
					if k != j {
						others = append(others, fmt.Sprintf("%q (%s)", wants[k].key, f.objectName(wants[k].file.Bucket, wants[k].file.Name)))
					}
				}
				rejects[wants[j].i] = fmt.Sprintf("target key collision: object %s would be stored as %q, which %s (comparing keys %s) "+
					"holds as one object with %s; none of them is stored, so that none overwrites another "+
					"(rename one at the source, or give each bucket its own --objects-prefix)",
					f.objectName(wants[j].file.Bucket, wants[j].file.Name), wants[j].key, f.store, cmp, strings.Join(others, ", "))
			}
			continue
		}
		w := wants[idx[0]]
		folds, keys, buckets, names = append(folds, []byte(fold)), append(keys, []byte(w.key)), append(buckets, w.bucket), append(names, w.name)
	}
	claims := map[int]claim{}
	if len(folds) == 0 {
		return rejects, claims, nil
	}
	target := f.store.String()
	// In digest order, so that batches claiming overlapping keys wait for
	// each other in one order and never deadlock.
	rows, err := tx.Query(ctx, `INSERT INTO `+StateSchema+`.object_keys (target, fold_sha256, target_key, bucket, name)
		SELECT $1, f, k, b, n FROM unnest($2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[]) AS u(f, k, b, n) ORDER BY f
		ON CONFLICT DO NOTHING RETURNING fold_sha256`, target, folds, keys, buckets, names)
	if err != nil {
		return nil, nil, fmt.Errorf("claiming the target keys of %d objects: %w", len(folds), err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, nil, fmt.Errorf("claiming the target keys of %d objects: %w", len(folds), err)
	}
	fresh := map[string]bool{}
	for _, fo := range inserted {
		fresh[string(fo)] = true
	}
	rows, err = tx.Query(ctx, `SELECT fold_sha256, target_key, bucket, name FROM `+StateSchema+`.object_keys
		WHERE target = $1 AND fold_sha256 = ANY($2)`, target, folds)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the holders of %d target keys: %w", len(folds), err)
	}
	type holder struct {
		Fold, Key, Bucket, Name []byte
	}
	holders, err := pgx.CollectRows(rows, pgx.RowToStructByPos[holder])
	if err != nil {
		return nil, nil, fmt.Errorf("reading the holders of %d target keys: %w", len(folds), err)
	}
	held := map[string]holder{}
	for _, h := range holders {
		held[string(h.Fold)] = h
	}
	var rivalFolds [][]byte
	var rivals []string
	for _, fold := range folds {
		w := wants[byFold[string(fold)][0]]
		h, ok := held[string(fold)]
		if !ok || (bytes.Equal(h.Bucket, w.bucket) && bytes.Equal(h.Name, w.name)) {
			claims[w.i] = claim{fold: fold, fresh: fresh[string(fold)]}
			continue
		}
		other := f.objectName(string(h.Bucket), string(h.Name))
		rejects[w.i] = fmt.Sprintf("target key collision: object %s would be stored as %q, which %s (comparing keys %s) "+
			"holds as one object with %q, where %s is already stored; it is not stored, so that neither overwrites the other "+
			"(rename one at the source, or give each bucket its own --objects-prefix)",
			f.objectName(w.file.Bucket, w.file.Name), w.key, f.store, cmp, string(h.Key), other)
		rivalFolds = append(rivalFolds, fold)
		rivals = append(rivals, textSafe(f.objectName(w.file.Bucket, w.file.Name)))
	}
	if len(rivalFolds) > 0 {
		_, err := tx.Exec(ctx, `UPDATE `+StateSchema+`.object_keys k SET rivals = array(SELECT DISTINCT unnest(k.rivals || u.rivals) ORDER BY 1)
			FROM (SELECT f, array_agg(r) AS rivals FROM unnest($2::bytea[], $3::text[]) AS u(f, r) GROUP BY f) u
			WHERE k.target = $1 AND k.fold_sha256 = u.f`, target, rivalFolds, rivals)
		if err != nil {
			return nil, nil, fmt.Errorf("recording objects rejected for their target key: %w", err)
		}
	}
	return rejects, claims, nil
}

// releaseKeys gives back, in tx, the keys this batch claimed for objects
// that were not stored after all.
func (f *Files) releaseKeys(ctx context.Context, tx pgx.Tx, folds [][]byte) error {
	if len(folds) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+StateSchema+`.object_keys WHERE target = $1 AND fold_sha256 = ANY($2)`, f.store.String(), folds); err != nil {
		return fmt.Errorf("releasing the target keys of %d rejected objects: %w", len(folds), err)
	}
	return nil
}

// Warnings reports the objects stored at a key that other objects were
// rejected for, in the store f writes into: both sides of every key
// collision with an object stored earlier.
func (f *Files) Warnings(ctx context.Context, db loaders.DB) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT target_key, bucket, name, rivals FROM `+StateSchema+`.object_keys
		WHERE target = $1 AND cardinality(rivals) > 0 ORDER BY target_key LIMIT 21`, f.store.String())
	if err != nil {
		return nil, fmt.Errorf("reading target key collisions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var key, bucket, name []byte
		var rivals []string
		if err := rows.Scan(&key, &bucket, &name, &rivals); err != nil {
			return nil, fmt.Errorf("reading target key collisions: %w", err)
		}
		if len(out) == 20 {
			out = append(out, "more target key collisions: see baasmigrate.object_keys (rivals)")
			break
		}
		slices.Sort(rivals)
		out = append(out, fmt.Sprintf("target key collision: %q in %s holds %s; rejected because they land on the same key: %s",
			string(key), f.store, f.objectName(string(bucket), string(name)), strings.Join(rivals, ", ")))
	}
	return out, rows.Err()
}

// foldDigest is the SHA-256 of a folded key, which stands for it in
// object_keys.
func foldDigest(fold string) []byte {
	sum := sha256.Sum256([]byte(fold))
	return sum[:]
}

// objectName names a source object for users: as SetObjectURL says, or
// "bucket/name".
func (f *Files) objectName(bucket, name string) string {
	if f.objectURL != nil {
		return f.objectURL(bucket, name)
	}
	return bucket + "/" + name
}
