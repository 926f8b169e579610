package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
)

// SetSoftDeletes makes Prepare (and PlannedDDL) add the column
// loaders.DeletedAtColumn to the users table, which Delete with soft set
// marks. Call it before Prepare.
func (s *Users) SetSoftDeletes(on bool) { s.soft.on = on }

// usersDetected rebuilds the users upsert when the users table has the
// deletion-time column: a user written again is live.
func (s *Users) usersDetected(has bool) {
	if !has {
		return
	}
	names := make([]string, 0, len(userColumns)+1)
	types := make([]string, 0, len(userColumns)+1)
	for _, c := range userColumns {
		names, types = append(names, c.name), append(types, c.ddlType)
	}
	names, types = append(names, loaders.DeletedAtColumn), append(types, "timestamptz")
	s.users = newTableDef(pgx.Identifier{s.cfg.Schema, UsersTable}, names, types, []string{"uid"})
}

// Delete removes the users with the uids keys (see loaders.Deleter).
//
// Hard: the users row, its provider identities and MFA factors, and the
// source positions recorded for the uid go. Soft: the users row gets
// loaders.DeletedAtColumn set to at (a row already marked keeps its first
// time) and keeps its identities and factors; readers (verify, auth
// export, auth verify-password) treat it as absent and a later Write of
// the uid clears the mark. Soft deletes need the column:
// SetSoftDeletes(true) before Prepare.
//
// A uid PostgreSQL text cannot hold (no row can have it) is rejected with
// the reason. Users rows are locked in uid order before anything is
// deleted, parents before children as Write takes them.
func (s *Users) Delete(ctx context.Context, tx pgx.Tx, keys []string, at time.Time, soft bool) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(keys))}
	if err := s.soft.detect(ctx, tx); err != nil {
		return out, err
	}
	var uids []string
	for i, uid := range keys {
		out.Tables[i] = s.labels.users
		if why := record.TextProblem(uid); why != "" {
			out.Reject(i, fmt.Sprintf("cannot delete user %q: the uid %s, which no users row can hold", uid, why))
			continue
		}
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	uids = slices.Compact(uids)
	if len(uids) == 0 {
		return out, nil
	}
	if soft && !s.soft.marked() {
		return out, fmt.Errorf("soft-deleting users: %s has no %s column; call SetSoftDeletes(true) before Prepare",
			s.table(UsersTable), loaders.DeletedAtColumn)
	}
	exists, err := TableExists(ctx, tx, s.cfg.Schema, UsersTable)
	if err != nil || !exists {
		return out, err // nothing was ever loaded: nothing to delete
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+s.table(UsersTable)+` WHERE uid = ANY($1::text[]) ORDER BY uid FOR UPDATE`, uids); err != nil {
		return out, fmt.Errorf("locking %d users to delete: %w", len(uids), err)
	}
	if soft {
		mark := pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()
		tag, err := tx.Exec(ctx, `UPDATE `+s.table(UsersTable)+` SET `+mark+` = $2 WHERE uid = ANY($1::text[]) AND `+mark+` IS NULL`, uids, at)
		if err != nil {
			return out, fmt.Errorf("marking %d users deleted: %w", len(uids), err)
		}
		if n := tag.RowsAffected(); n > 0 {
			out.AddChanged(s.labels.users, n)
		}
		return out, nil
	}
	for _, step := range []struct{ table, label string }{
		{ProvidersTable, s.labels.providers}, {MFATable, s.labels.mfa}, {UsersTable, s.labels.users},
	} {
		tag, err := tx.Exec(ctx, `DELETE FROM `+s.table(step.table)+` WHERE uid = ANY($1::text[])`, uids)
		if err != nil {
			return out, fmt.Errorf("deleting %d users from %s: %w", len(uids), step.label, err)
		}
		if n := tag.RowsAffected(); n > 0 {
			out.AddChanged(step.label, n)
		}
	}
	if _, err := tx.Exec(ctx, s.forgetPositions, uids); err != nil {
		return out, fmt.Errorf("forgetting the source positions of %d deleted users: %w", len(uids), err)
	}
	return out, nil
}
