#!/usr/bin/env bash
# scripts/demo.sh — the demo behind `make demo`: seed the local emulators with a
# sample app (users, posts with comments, orders with items and adjustments,
# archived entries under missing parents, every Firestore value type, a few
# documents that disagree on a field's type), then infer a mapping and migrate
# it into a fresh PostgreSQL database, and show how to look at the result.
#
# Expects the stack to be up (make demo runs services-up first). Re-running
# starts from scratch: the demo project and database are reset.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

set -a
# shellcheck source=/dev/null
. .local/services.env
set +a

PROJECT=${DEMO_PROJECT:-demo-baasmigrate}
DB=baasmigrate_demo
OUT=.local/demo
mkdir -p "$OUT" bin

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Building baasmigrate"
go build -o bin/baasmigrate ./cmd/baasmigrate
go build -o "$OUT/seed-demo" ./e2e/demoapp/cmd/seed-demo

step "Seeding the emulators (project $PROJECT)"
curl -fsS -X DELETE "http://$FIRESTORE_EMULATOR_HOST/emulator/v1/projects/$PROJECT/databases/(default)/documents" >/dev/null
curl -fsS -X DELETE "http://$FIREBASE_AUTH_EMULATOR_HOST/emulator/v1/projects/$PROJECT/accounts" >/dev/null
"$OUT/seed-demo" --project "$PROJECT" --users 60 --files 40
# The object store target: a MinIO bucket (created when missing; objects a
# previous demo copied are recognised by checksum and skipped).
OBJECTS="s3://baasmigrate-demo?endpoint=$S3_ENDPOINT&region=us-east-1"

# The demo project's password hash parameters (Firebase console → Authentication
# → ⋮ → Password hash parameters). These are Firebase's public test values.
export FIREBASE_HASH_SIGNER_KEY='jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=='
export FIREBASE_HASH_SALT_SEPARATOR='Bw==' FIREBASE_HASH_ROUNDS=8 FIREBASE_HASH_MEM_COST=14

step "Creating a fresh target database $DB"
psql -q "$BAASMIGRATE_PG_ADMIN_URL" -v ON_ERROR_STOP=1 \
	-c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB OWNER baasmigrate" >/dev/null
TARGET="${DATABASE_URL%%\?*}"
TARGET="${TARGET%/*}/$DB?sslmode=disable"

step "Inferring a mapping: baasmigrate infer --out $OUT/mapping.yaml"
bin/baasmigrate infer --firebase-project "$PROJECT" --out "$OUT/mapping.yaml"
echo "(the first lines of the mapping; review and edit it like a schema migration)"
sed -n '14,40p' "$OUT/mapping.yaml"

step "Planning (a dry run that writes nothing): baasmigrate plan --counts-only"
bin/baasmigrate plan --only users,documents --firebase-project "$PROJECT" --postgres "$TARGET" \
	--mapping "$OUT/mapping.yaml" --counts-only 2>/dev/null | grep -E '^(==|  -- |migrate would)'

step "Migrating users, documents and files: baasmigrate migrate --mapping $OUT/mapping.yaml --objects s3://… --summary $OUT/summary.json"
status=0
bin/baasmigrate migrate --firebase-project "$PROJECT" --postgres "$TARGET" --objects "$OBJECTS" \
	--mapping "$OUT/mapping.yaml" --workers 4 --summary "$OUT/summary.json" || status=$?

step "Running it again changes nothing"
bin/baasmigrate migrate --firebase-project "$PROJECT" --postgres "$TARGET" --objects "$OBJECTS" \
	--mapping "$OUT/mapping.yaml" | grep -E 'total|already'

step "Verifying by content: baasmigrate verify"
bin/baasmigrate verify --firebase-project "$PROJECT" --postgres "$TARGET" --objects "$OBJECTS" | tail -n 1

step "The app keeps running: baasmigrate sync follows it (documents: change stream; users, files: polls)"
bin/baasmigrate sync --firebase-project "$PROJECT" --postgres "$TARGET" --objects "$OBJECTS" \
	--mapping "$OUT/mapping.yaml" --poll-interval 2s --status-interval 0 >"$OUT/sync.out" 2>"$OUT/sync.err" &
sync_pid=$!
trap 'kill "$sync_pid" 2>/dev/null || true' EXIT
"$OUT/seed-demo" --project "$PROJECT" --live-changes
bin/baasmigrate cutover --prepare --firebase-project "$PROJECT" --postgres "$TARGET" --objects "$OBJECTS" 2>/dev/null
echo "(writes are frozen now; in production: security rules that deny writes, see docs/sync.md)"
bin/baasmigrate cutover --firebase-project "$PROJECT" --postgres "$TARGET" --objects "$OBJECTS" 2>/dev/null
bin/baasmigrate status --postgres "$TARGET" | sed -n '/^syncs:/,$p'
kill -INT "$sync_pid"
wait "$sync_pid" || { echo "sync exited with $?; see $OUT/sync.err"; exit 1; }
trap - EXIT

step "Passwords keep working: baasmigrate auth verify-password --uid user0001"
printf '%s\n' demo-password-1 | bin/baasmigrate auth verify-password --uid user0001 --postgres "$TARGET" && echo "right password: accepted"
printf '%s\n' wrong-password | bin/baasmigrate auth verify-password --uid user0001 --postgres "$TARGET" || echo "wrong password: refused"

step "Look at the result"
masked=$(sed -E 's#(://[^:/]+:)[^@]*@#\1***@#' <<<"$TARGET")
cat <<TXT
The target is $masked (password in .local/services.env). Try:

  set -a; . .local/services.env; set +a
  psql "\${DATABASE_URL%/baasmigrate*}/$DB" -c '\\dt'
  psql "\${DATABASE_URL%/baasmigrate*}/$DB" -c 'SELECT id, name, age, address->>'"'"'city'"'"' AS city, _overflow FROM users LIMIT 5'
  psql "\${DATABASE_URL%/baasmigrate*}/$DB" -c 'SELECT orders_id, id, sku, qty, price FROM orders_items LIMIT 5'
  psql "\${DATABASE_URL%/baasmigrate*}/$DB" -c 'SELECT archive_id, months_id, id, note FROM archive_months_entries LIMIT 3'
  psql "\${DATABASE_URL%/baasmigrate*}/$DB" -c 'SELECT uid, email, password_algorithm FROM firebase_auth.users LIMIT 5'
  psql "\${DATABASE_URL%/baasmigrate*}/$DB" -c 'SELECT name, size, content_type, download_tokens, target_key FROM files LIMIT 5'
  psql "\${DATABASE_URL%/baasmigrate*}/$DB" -c 'SELECT * FROM baasmigrate.rejects'

Mapping: $OUT/mapping.yaml   Summary (JSON): $OUT/summary.json
TXT
exit "$status"
