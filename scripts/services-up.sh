#!/usr/bin/env bash
# scripts/services-up.sh — install (pinned), start (loopback only) or reuse the
# local service stack that tests and the demo run against, then write
# .local/services.env. See DESIGN.md "Local services".
#
# Idempotent: a service whose pid file names a live process that answers its
# health check is reused on the same port; only dead or unhealthy services
# are (re)started. Installs are skipped when the pinned version is present.
#
# Port overrides (otherwise a free port is picked once and reused):
#   BAASMIGRATE_PG_PORT  BAASMIGRATE_FIRESTORE_PORT  BAASMIGRATE_AUTH_PORT
#   BAASMIGRATE_GCS_PORT BAASMIGRATE_MINIO_PORT      BAASMIGRATE_MINIO_CONSOLE_PORT
#   BAASMIGRATE_COGNITO_PORT
#   BAASMIGRATE_DYNAMODB_PORT
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Lines of .local/services.env, and a summary row per service.
ENV_LINES=()
SUMMARY=()

env_line() { ENV_LINES+=("export $1='$2'"); }

# ensure_service NAME OVERRIDE TIMEOUT_S CHECK_FN START_FN
# Reuses NAME if its pid file names a live process that passes CHECK_FN PORT;
# otherwise stops whatever is left, picks a port, runs START_FN PORT and waits
# (bounded) for CHECK_FN PORT. Sets SERVICE_PORT.
ensure_service() {
	local name=$1 override=$2 timeout=$3 check=$4 start=$5 pid port t0 exe
	pid=$(service_pid "$name" "$(service_pattern "$name")")
	port=$(read_file "$(port_file "$name")")
	if [[ -n $pid ]]; then
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		if [[ -n $override && $override != "$port" ]]; then
			# Check before stopping: a taken port must not cost the running one.
			port_free "$override" || die "$name: port $override (from its BAASMIGRATE_*_PORT override) is already in use on 127.0.0.1"
			log "$name: running on port $port but an override asks for $override; restarting"
		elif [[ $exe == *" (deleted)" ]]; then
			# go install / go build replaced the binary: the process runs stale code.
			log "$name: its binary was rebuilt since pid $pid started; restarting"
		elif poll_ok 5 "$check" "$port"; then
			PICKED_PORTS+="$port "
			log "$name: reusing pid $pid on 127.0.0.1:$port"
			SUMMARY+=("$name|$pid|127.0.0.1:$port|reused")
			SERVICE_PORT=$port
			return 0
		else
			warn "$name: pid $pid is alive but does not answer on port $port; restarting it"
		fi
		stop_pid "$name" "$pid"
	elif [[ -e $(pid_file "$name") ]]; then
		log "$name: pid $(read_file "$(pid_file "$name")") from its pid file is not running; starting it again"
	fi
	rm -f "$(pid_file "$name")"
	pick_port "$name" "$override"
	port=$PICKED_PORT
	t0=$(now_ms)
	"$start" "$port"
	pid=$(read_file "$(pid_file "$name")")
	wait_ready "$name" "$pid" "$timeout" "$check" "$port"
	kill -0 "$pid" 2>/dev/null || fail_service "$name" "exited right after answering (is port $port used by something else?)"
	log "$name: started pid $pid on 127.0.0.1:$port in $(($(now_ms) - t0)) ms"
	SUMMARY+=("$name|$pid|127.0.0.1:$port|started")
	SERVICE_PORT=$port
}

# poll_ok SECONDS CMD...: like wait_ready but returns a status instead of
# exiting; used to decide whether a running service can be reused.
poll_ok() {
	local deadline=$(($(now_ms) + $1 * 1000))
	shift
	until "$@" >/dev/null 2>&1; do
		(($(now_ms) < deadline)) || return 1
		sleep 0.2
	done
}

# --- PostgreSQL ---------------------------------------------------------------

PG_BIN=""
PG_ADMIN_PASSWORD=""

pg_psql_admin() {
	# Superuser over TCP with a password: the cluster has no unix socket.
	PGPASSWORD=$PG_ADMIN_PASSWORD PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$1" -U postgres -d postgres "${@:2}"
}

pg_check() { pg_psql_admin "$1" -tAc 'SELECT 1' | grep -qx 1; }

up_postgres() {
	local port pw override=${BAASMIGRATE_PG_PORT:-} t0 running_port=""
	PG_BIN=$(find_pg_bin)
	if [[ -z $PG_BIN ]]; then
		apt_install postgresql
		PG_BIN=$(find_pg_bin)
		[[ -n $PG_BIN ]] || die "postgres: installed the postgresql package but found no pg_ctl"
	fi
	(($(pg_major "$PG_BIN") >= 15)) || die "postgres: need PostgreSQL 15+, found $("$PG_BIN/pg_ctl" --version)"
	if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
		log "postgres: creating the postgres system user (initdb refuses to run as root)"
		useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
	fi

	pg_place

	# The cluster is throwaway: recreate it rather than fail when it cannot
	# be used — its superuser password was deleted, or it was made by
	# another PostgreSQL major version.
	if [[ -f $PG_DATA/PG_VERSION ]]; then
		local why=""
		[[ -s $LOCAL_DIR/secrets/pg-admin-password ]] || why="its superuser password file is gone"
		[[ $(cat "$PG_DATA/PG_VERSION") == "$(pg_major "$PG_BIN")" ]] || why="it was made by PostgreSQL $(cat "$PG_DATA/PG_VERSION")"
		if [[ -n $why ]]; then
			warn "postgres: recreating the cluster in $PG_DATA: $why"
			! pg_running || as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 60 >/dev/null
			rm -rf "$PG_DATA"
		fi
	fi
	PG_ADMIN_PASSWORD=$(secret_file "$LOCAL_DIR/secrets/pg-admin-password" 18)
	pw=$(secret_file "$LOCAL_DIR/secrets/pg-password" 18)

	if pg_running; then
		running_port=$(sed -n 4p "$PG_DATA/postmaster.pid")
		if [[ -n $override && $override != "$running_port" ]]; then
			log "postgres: running on port $running_port but BAASMIGRATE_PG_PORT=$override; restarting"
		elif poll_ok 5 pg_check "$running_port"; then
			port=$running_port
			PICKED_PORTS+="$port "
			log "postgres: reusing the cluster on 127.0.0.1:$port"
			SUMMARY+=("postgres|$(head -n1 "$PG_DATA/postmaster.pid")|127.0.0.1:$port|reused")
		else
			warn "postgres: postmaster is alive but does not answer on port $running_port; restarting it"
		fi
		if [[ -z ${port:-} ]]; then
			as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null
		fi
	fi

	if [[ -z ${port:-} ]]; then
		t0=$(now_ms)
		if [[ ! -f $PG_DATA/PG_VERSION ]]; then
			pg_initdb
		fi
		pick_port postgres "$override"
		port=$PICKED_PORT
		pg_write_conf "$port"
		pg_rotate_log
		# setsid: keep the postmaster out of the caller's process group
		# (Ctrl-C); 9>&-: and out of our lock (see start_daemon).
		if ! as_pg setsid --wait "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 60 >/dev/null 9>&-; then
			fail_service postgres "failed to start"
		fi
		wait_ready postgres "" 30 pg_check "$port"
		log "postgres: started on 127.0.0.1:$port in $(($(now_ms) - t0)) ms"
		SUMMARY+=("postgres|$(head -n1 "$PG_DATA/postmaster.pid")|127.0.0.1:$port|started")
	fi
	head -n1 "$PG_DATA/postmaster.pid" >"$(pid_file postgres)"
	printf '%s\n' "$port" >"$(port_file postgres)"

	# Provision the application role and database on every run: cheap,
	# idempotent, and repairs a cluster whose password file was regenerated.
	# CREATEDB lets tests create a fresh database each (testenv.NewDatabase).
	pg_psql_admin "$port" >/dev/null <<-EOF || fail_service postgres "rejected the role/database setup"
		SELECT 'CREATE ROLE baasmigrate LOGIN'
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'baasmigrate')\gexec
		ALTER ROLE baasmigrate WITH LOGIN CREATEDB PASSWORD '$pw';
		SELECT 'CREATE DATABASE baasmigrate OWNER baasmigrate'
		 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'baasmigrate')\gexec
	EOF

	env_line DATABASE_URL "postgres://baasmigrate:$pw@127.0.0.1:$port/baasmigrate?sslmode=disable"
	env_line BAASMIGRATE_PG_ADMIN_URL "postgres://postgres:$PG_ADMIN_PASSWORD@127.0.0.1:$port/postgres?sslmode=disable"
}

# PG_LOG is the server log pg_ctl writes as the postgres user.
PG_LOG=$LOG_DIR/postgres.log

# pg_place decides where the cluster lives (PG_HOME, PG_DATA, PG_LOG). As a
# normal user: .local/pg. As root the server runs as the postgres user, who
# must be able to reach its data directory and log: when a parent of .local
# is closed to others (a mode-700 home, a mktemp -d directory), the cluster
# goes to /var/tmp/baasmigrate-HASH (HASH: of this checkout's .local path,
# so two checkouts never share one), its log beside it and linked from
# .local/log/postgres.log. The choice is recorded in .local/pg-location; a
# recorded location is kept while postgres can reach it.
pg_place() {
	local home=$LOCAL_DIR/pg alt
	if [[ $EUID -ne 0 ]]; then
		PG_HOME=$home
	elif [[ -s $PG_LOCATION_FILE ]] && as_pg test -x "$PG_HOME" -a -w "$PG_HOME"; then
		: # keep the recorded location
	else
		mkdir -p "$home"
		chown postgres: "$home"
		if as_pg test -x "$home" -a -w "$home"; then
			PG_HOME=$home
		else
			alt=/var/tmp/baasmigrate-$(printf '%s' "$LOCAL_DIR" | sha256sum | cut -c1-16)
			mkdir -p "$alt"
			chown postgres: "$alt"
			chmod 700 "$alt"
			as_pg test -x "$alt" -a -w "$alt" || die "postgres: user postgres can reach neither $home nor $alt"
			if [[ $PG_HOME != "$alt" ]]; then
				warn "postgres: user postgres cannot reach $home (a parent directory is closed to others); the cluster lives in $alt instead (recorded in $PG_LOCATION_FILE; services-down finds it there)"
			fi
			PG_HOME=$alt
		fi
	fi
	PG_DATA=$PG_HOME/data
	if [[ $PG_HOME == "$home" ]]; then
		rm -f "$PG_LOCATION_FILE"
		PG_LOG=$LOG_DIR/postgres.log
	else
		printf '%s\n' "$PG_HOME" >"$PG_LOCATION_FILE"
		PG_LOG=$PG_HOME/postgres.log
	fi
}

# pg_rotate_log keeps one previous server log (like rotate_log), where the
# postgres user can write it; a log moved out of .local is linked from
# .local/log/postgres.log.
pg_rotate_log() {
	mkdir -p "$LOG_DIR"
	if [[ -e $PG_LOG ]]; then mv -f "$PG_LOG" "$PG_LOG.1"; fi
	: >"$PG_LOG"
	[[ $EUID -ne 0 ]] || chown postgres: "$PG_LOG"
	if [[ $PG_LOG != "$LOG_DIR/postgres.log" ]]; then
		ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"
	fi
}

# pg_initdb creates the throwaway cluster, owned by postgres, with a
# superuser password and password (SCRAM) authentication everywhere.
pg_initdb() {
	local pwfile=$PG_HOME/initdb-pwfile
	log "postgres: initdb $PG_DATA ($("$PG_BIN/pg_ctl" --version))"
	rm -rf "$PG_DATA"
	(
		umask 077
		printf '%s\n' "$PG_ADMIN_PASSWORD" >"$pwfile"
	)
	[[ $EUID -ne 0 ]] || chown postgres: "$pwfile"
	mkdir -p "$LOG_DIR"
	# --no-locale: C collation, so ORDER BY in tests is byte order, the same
	# everywhere. --no-sync: a throwaway cluster need not survive power loss.
	if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" \
		--auth=scram-sha-256 --encoding=UTF8 --no-locale --no-sync \
		>"$LOG_DIR/initdb.log" 2>&1; then
		rm -f "$pwfile"
		die "postgres: initdb failed; see $LOG_DIR/initdb.log"
	fi
	rm -f "$pwfile"
	printf "\ninclude_if_exists = 'baasmigrate.conf'\n" >>"$PG_DATA/postgresql.conf"
	# Only password logins over IPv4 loopback; there is no unix socket.
	cat >"$PG_DATA/pg_hba.conf" <<-'EOF'
		# Written by scripts/services-up.sh: password auth over loopback TCP only.
		# TYPE  DATABASE  USER  ADDRESS       METHOD
		host    all       all   127.0.0.1/32  scram-sha-256
	EOF
	[[ $EUID -ne 0 ]] || chown postgres: "$PG_DATA/pg_hba.conf"
}

# pg_write_conf PORT writes the settings included by postgresql.conf. Tuned
# for tests on a throwaway cluster, NOT for data anyone wants to keep.
pg_write_conf() {
	cat >"$PG_DATA/baasmigrate.conf" <<-EOF
		# Written by scripts/services-up.sh at every start; edits are lost.
		listen_addresses = '127.0.0.1'
		port = $1
		# No unix socket: its path under a deep checkout would exceed the
		# 107-byte sun_path limit, and TCP keeps password auth meaningful.
		unix_socket_directories = ''
		# Every test package creates its own database and pools; the race
		# detector slows clients, so connections pile up.
		max_connections = 250
		shared_buffers = 256MB
		# Durability off: this cluster is recreated at will and a crash may
		# lose it. Never copy these three lines to a real server.
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		# Fewer checkpoints during bulk COPY in tests and benchmarks.
		max_wal_size = 4GB
		# Sync of tables reads a source database through logical
		# replication (a slot per test job): needs wal_level = logical
		# (a restart), and room for the slots and walsenders of parallel
		# tests.
		wal_level = logical
		max_replication_slots = 32
		max_wal_senders = 32
		log_min_messages = warning
		log_min_error_statement = error
	EOF
	[[ $EUID -ne 0 ]] || chown postgres: "$PG_DATA/baasmigrate.conf"
}

# --- Firestore emulator (ours, e2e/firestoreemu) -----------------------------

FIRESTORE_SRC=e2e/firestoreemu/cmd/firestoreemu

firestore_check() { http_ok "http://127.0.0.1:$1/" '^Ok'; }

firestore_start() {
	start_daemon firestoreemu "$LOCAL_DIR" "$BIN_DIR/firestoreemu" --host 127.0.0.1 --port "$1"
}

up_firestoreemu() {
	local pid
	if [[ ! -d $REPO_ROOT/$FIRESTORE_SRC ]]; then
		warn "firestoreemu: $FIRESTORE_SRC does not exist in this checkout yet; FIRESTORE_EMULATOR_HOST is NOT set (Firestore tests will skip, or fail under BAASMIGRATE_REQUIRE_SERVICES=1)"
		pid=$(service_pid firestoreemu "$(service_pattern firestoreemu)")
		[[ -z $pid ]] || stop_pid firestoreemu "$pid"
		rm -f "$(pid_file firestoreemu)"
		SUMMARY+=("firestoreemu|-|-|MISSING ($FIRESTORE_SRC)")
		ENV_LINES+=("# firestoreemu: not started, $FIRESTORE_SRC is missing")
		return 0
	fi
	# Always rebuild (the build cache makes this ~1 s): the emulator is
	# developed in this repo, and a stale binary would test yesterday's code.
	# Only a changed binary replaces the old one; ensure_service then sees the
	# running process's executable as deleted and restarts it.
	mkdir -p "$BIN_DIR" "$LOG_DIR"
	if ! (cd "$REPO_ROOT" && go build -buildvcs=false -o "$BIN_DIR/firestoreemu.new" "./$FIRESTORE_SRC") \
		>"$LOG_DIR/build-firestoreemu.log" 2>&1; then
		die "firestoreemu: go build ./$FIRESTORE_SRC failed; see $LOG_DIR/build-firestoreemu.log"
	fi
	if cmp -s "$BIN_DIR/firestoreemu.new" "$BIN_DIR/firestoreemu"; then
		rm -f "$BIN_DIR/firestoreemu.new"
	else
		mv -f "$BIN_DIR/firestoreemu.new" "$BIN_DIR/firestoreemu"
	fi
	ensure_service firestoreemu "${BAASMIGRATE_FIRESTORE_PORT:-}" 30 firestore_check firestore_start
	env_line FIRESTORE_EMULATOR_HOST "127.0.0.1:$SERVICE_PORT"
}

# --- Firebase Auth emulator (firebase-tools) ---------------------------------

FIREBASE_JS=$NPM_DIR/node_modules/firebase-tools/lib/bin/firebase.js

auth_check() { http_ok "http://127.0.0.1:$1/" '"ready": *true'; }

auth_start() {
	local port=$1 hub logging dir=$LOCAL_DIR/firebase
	# The emulator hub and logging emulator also listen (defaults 4400/4500,
	# fixed): give them free ports too, so two stacks or other tools coexist.
	pick_port auth-hub ""
	hub=$PICKED_PORT
	pick_port auth-logging ""
	logging=$PICKED_PORT
	mkdir -p "$dir/config"
	# singleProjectMode false: tests use a fresh demo-* project id each
	# (testenv.FreshProjectID) for isolation; the emulator keeps one user
	# store per project id.
	cat >"$dir/firebase.json" <<-EOF
		{
		  "emulators": {
		    "auth": { "host": "127.0.0.1", "port": $port },
		    "hub": { "host": "127.0.0.1", "port": $hub },
		    "logging": { "host": "127.0.0.1", "port": $logging },
		    "ui": { "enabled": false },
		    "singleProjectMode": false
		  }
		}
	EOF
	# Offline: CI=1 skips the message-of-the-day fetch (which can even abort
	# an "outdated" CLI) and update-notifier's registry check, as does
	# NO_UPDATE_NOTIFIER. XDG_CONFIG_HOME keeps its configstore under .local.
	start_daemon auth "$dir" env CI=1 NO_UPDATE_NOTIFIER=1 XDG_CONFIG_HOME="$dir/config" \
		node "$FIREBASE_JS" emulators:start --only auth --project "$DEMO_PROJECT"
}

up_auth() {
	local have="" want lock t0
	command -v node >/dev/null 2>&1 || die "auth: node (20+) is required for firebase-tools and is not on PATH"
	# scripts/npm pins firebase-tools and, through its lockfile, every
	# dependency; the stamp records which lockfile the install came from.
	lock=$(sha256sum "$REPO_ROOT/scripts/npm/package-lock.json" | cut -d' ' -f1)
	want="$FIREBASE_TOOLS_VERSION $lock"
	have=$(read_file "$NPM_DIR/.installed-from")
	if [[ $have != "$want" || ! -f $NPM_DIR/node_modules/firebase-tools/package.json ]]; then
		log "auth: npm ci firebase-tools@$FIREBASE_TOOLS_VERSION (locked by scripts/npm) into $NPM_DIR; takes ~2 min"
		t0=$(now_ms)
		mkdir -p "$NPM_DIR" "$LOG_DIR"
		cp "$REPO_ROOT/scripts/npm/package.json" "$REPO_ROOT/scripts/npm/package-lock.json" "$NPM_DIR/"
		if ! npm_ci "$NPM_DIR" "$LOG_DIR/install-firebase-tools.log"; then
			die "auth: npm ci firebase-tools@$FIREBASE_TOOLS_VERSION failed; see $LOG_DIR/install-firebase-tools.log"
		fi
		printf '%s\n' "$want" >"$NPM_DIR/.installed-from"
		log "auth: installed in $((($(now_ms) - t0) / 1000))s"
		# A running emulator still has the old modules loaded: restart it.
		local pid
		pid=$(service_pid auth "$(service_pattern auth)")
		if [[ -n $pid ]]; then
			stop_pid auth "$pid"
			rm -f "$(pid_file auth)"
		fi
	fi
	ensure_service auth "${BAASMIGRATE_AUTH_PORT:-}" 120 auth_check auth_start
	env_line FIREBASE_AUTH_EMULATOR_HOST "127.0.0.1:$SERVICE_PORT"
}

# --- fake-gcs-server (Cloud Storage) ----------------------------------------

gcs_check() { http_ok "http://127.0.0.1:$1/_internal/healthcheck"; }

gcs_start() {
	local port=$1 data=$LOCAL_DIR/gcs/data
	# Filesystem backend, not memory: benchmarks put >= 2 GB of objects in
	# it, which the memory backend would hold in RAM (the machine runs the
	# tests, Postgres and MinIO beside it). The directory is emptied at each
	# fresh start, so a (re)started emulator is empty as a memory one would be
	# and disk use does not grow across runs.
	rm -rf "$data"
	mkdir -p "$data"
	# -public-host / -external-url: download and upload-session URLs the
	# server hands out point back at this server, not storage.googleapis.com.
	start_daemon fake-gcs "$LOCAL_DIR/gcs" "$BIN_DIR/fake-gcs-server" \
		-scheme http -host 127.0.0.1 -port "$port" \
		-backend filesystem -filesystem-root "$data" \
		-public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port" \
		-log-level warn
}

up_gcs() {
	ensure_go_install fake-gcs-server "$FAKE_GCS_MODULE" "$FAKE_GCS_VERSION"
	ensure_service fake-gcs "${BAASMIGRATE_GCS_PORT:-}" 30 gcs_check gcs_start
	# With the scheme: the Go client accepts host:port or a URL, but Node's
	# @google-cloud/storage assumes https:// when no scheme is given.
	env_line STORAGE_EMULATOR_HOST "http://127.0.0.1:$SERVICE_PORT"
	# firebase-admin's convention (host:port); firebase-admin-go copies it into
	# STORAGE_EMULATOR_HOST when that is unset.
	env_line FIREBASE_STORAGE_EMULATOR_HOST "127.0.0.1:$SERVICE_PORT"
}

# --- MinIO (S3) ---------------------------------------------------------------

MINIO_USER=""
MINIO_PASSWORD=""

minio_check() { http_ok "http://127.0.0.1:$1/minio/health/live"; }

minio_start() {
	local port=$1 console
	pick_port minio-console "${BAASMIGRATE_MINIO_CONSOLE_PORT:-}"
	console=$PICKED_PORT
	mkdir -p "$LOCAL_DIR/minio/data"
	# MINIO_UPDATE=off: no update checks against the internet.
	start_daemon minio "$LOCAL_DIR/minio" env \
		MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" MINIO_UPDATE=off \
		"$BIN_DIR/minio" server "$LOCAL_DIR/minio/data" \
		--address "127.0.0.1:$port" --console-address "127.0.0.1:$console"
}

# check_minio_disk warns when MinIO's drive is nearly full: MinIO refuses
# every write once its drive is about 99% used ("Storage backend has reached
# its minimum free drive threshold"), which fails every object-store test
# with an error that does not say the machine is the cause.
check_minio_disk() {
	local used="" avail=""
	# Only a warning: no answer from df (no such directory: a MinIO this
	# script did not start) must not end the script under set -e.
	read -r used avail < <(df -P -k "$LOCAL_DIR/minio/data" 2>/dev/null | awk 'NR == 2 { sub("%", "", $5); print $5, $4 }') || true
	if [[ -n $used ]] && { ((used >= 97)) || ((avail < 2 * 1024 * 1024)); }; then
		warn "the drive of $LOCAL_DIR/minio/data is ${used}% used ($((avail / 1024)) MiB free): MinIO refuses writes near 99%; free space before running tests"
	fi
}

up_minio() {
	ensure_go_install minio "$MINIO_MODULE" "$MINIO_VERSION"
	# Generated once and kept: MinIO's stored config in the data directory is
	# tied to the root credentials it was first started with.
	MINIO_USER=bm$(secret_file "$LOCAL_DIR/secrets/minio-user" 6)
	MINIO_PASSWORD=$(secret_file "$LOCAL_DIR/secrets/minio-password" 20)
	ensure_service minio "${BAASMIGRATE_MINIO_PORT:-}" 60 minio_check minio_start
	check_minio_disk
	env_line S3_ENDPOINT "http://127.0.0.1:$SERVICE_PORT"
	env_line S3_ACCESS_KEY "$MINIO_USER"
	env_line S3_SECRET_KEY "$MINIO_PASSWORD"
	env_line AWS_ACCESS_KEY_ID "$MINIO_USER"
	env_line AWS_SECRET_ACCESS_KEY "$MINIO_PASSWORD"
	env_line AWS_REGION us-east-1
}

# --- DynamoDB Local (amplify-dynamodb-simulator) -----------------------------

# DynamoDB Local answers a bare GET with 400 (no operation): that is alive.
dynamodb_check() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/") == 400 ]]
}

dynamodb_start() {
	# In memory (a restart is empty, as the other emulators are), one
	# database for every access key and region (-sharedDb): tests and the
	# CLI reach the same tables whatever credentials the chain finds.
	# The JVM's default heap (a quarter of RAM): bench/dynamodb's tables
	# (200,000 then 400,000 items, in memory) take gigabytes.
	start_daemon dynamodb "$DYNAMODB_LOCAL_DIR" java \
		"-Djava.library.path=$DYNAMODB_LOCAL_DIR/DynamoDBLocal_lib" \
		-jar "$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -port "$1"
}

up_dynamodb() {
	local have="" want lock t0 pid
	command -v java >/dev/null 2>&1 || die "dynamodb: java (17+) is required for DynamoDB Local and is not on PATH"
	command -v node >/dev/null 2>&1 || die "dynamodb: npm (node 20+) is required to install amplify-dynamodb-simulator and is not on PATH"
	lock=$(sha256sum "$REPO_ROOT/scripts/npm-dynamodb/package-lock.json" | cut -d' ' -f1)
	want="$DYNAMODB_SIMULATOR_VERSION $lock"
	have=$(read_file "$NPM_DYNAMODB_DIR/.installed-from")
	if [[ $have != "$want" || ! -f $DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar ]]; then
		log "dynamodb: npm ci amplify-dynamodb-simulator@$DYNAMODB_SIMULATOR_VERSION (locked by scripts/npm-dynamodb) into $NPM_DYNAMODB_DIR"
		t0=$(now_ms)
		mkdir -p "$NPM_DYNAMODB_DIR" "$LOG_DIR"
		cp "$REPO_ROOT/scripts/npm-dynamodb/package.json" "$REPO_ROOT/scripts/npm-dynamodb/package-lock.json" "$NPM_DYNAMODB_DIR/"
		if ! npm_ci "$NPM_DYNAMODB_DIR" "$LOG_DIR/install-dynamodb.log"; then
			die "dynamodb: npm ci amplify-dynamodb-simulator@$DYNAMODB_SIMULATOR_VERSION failed; see $LOG_DIR/install-dynamodb.log"
		fi
		[[ -f $DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar ]] || die "dynamodb: amplify-dynamodb-simulator@$DYNAMODB_SIMULATOR_VERSION has no emulator/DynamoDBLocal.jar"
		printf '%s\n' "$want" >"$NPM_DYNAMODB_DIR/.installed-from"
		log "dynamodb: installed in $((($(now_ms) - t0) / 1000))s"
		pid=$(service_pid dynamodb "$(service_pattern dynamodb)")
		if [[ -n $pid ]]; then
			stop_pid dynamodb "$pid"
			rm -f "$(pid_file dynamodb)"
		fi
	fi
	ensure_service dynamodb "${BAASMIGRATE_DYNAMODB_PORT:-}" 60 dynamodb_check dynamodb_start
	env_line DYNAMODB_ENDPOINT "http://127.0.0.1:$SERVICE_PORT"
}

# --- cognito-local (Cognito user pools) --------------------------------------

COGNITO_JS=$COGNITO_NPM_DIR/node_modules/cognito-local/lib/bin/start.js

# Any request answers (cognito-local has no health route); a POST without a
# target is refused with a JSON error, which proves the server is up.
cognito_check() { curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$1/" | grep -q '^[1-5]'; }

cognito_start() {
	local port=$1 dir=$LOCAL_DIR/cognito
	# cognito-local keeps its pools in ./.cognito of its working directory;
	# tests create a fresh pool each, so the directory is kept across restarts.
	# Its own default makes every new pool sign users in by e-mail
	# (UsernameAttributes ["email"]), which a request cannot undo; Cognito's
	# default is plain usernames, so the config says so (a test that wants
	# e-mail usernames asks for them when it creates its pool).
	mkdir -p "$dir/.cognito/db"
	printf '%s\n' '{ "UserPoolDefaults": { "UsernameAttributes": [] } }' >"$dir/.cognito/config.json"
	start_daemon cognito "$dir" env PORT="$port" HOST=127.0.0.1 NO_UPDATE_NOTIFIER=1 node "$COGNITO_JS"
}

# install_cognito_local installs cognito-local, pinned with every dependency
# by scripts/npm-cognito's lockfile, into COGNITO_NPM_DIR (once per lockfile).
install_cognito_local() {
	local have want lock
	command -v node >/dev/null 2>&1 || die "cognito: node (20+) is required for cognito-local and is not on PATH"
	lock=$(sha256sum "$REPO_ROOT/scripts/npm-cognito/package-lock.json" | cut -d' ' -f1)
	want="$COGNITO_LOCAL_VERSION $lock"
	have=$(read_file "$COGNITO_NPM_DIR/.installed-from")
	if [[ $have != "$want" || ! -f $COGNITO_JS ]]; then
		log "cognito: npm ci cognito-local@$COGNITO_LOCAL_VERSION (locked by scripts/npm-cognito) into $COGNITO_NPM_DIR"
		mkdir -p "$COGNITO_NPM_DIR" "$LOG_DIR"
		cp "$REPO_ROOT/scripts/npm-cognito/package.json" "$REPO_ROOT/scripts/npm-cognito/package-lock.json" "$COGNITO_NPM_DIR/"
		if ! npm_ci "$COGNITO_NPM_DIR" "$LOG_DIR/install-cognito-local.log"; then
			die "cognito: npm ci cognito-local@$COGNITO_LOCAL_VERSION failed; see $LOG_DIR/install-cognito-local.log"
		fi
		printf '%s\n' "$want" >"$COGNITO_NPM_DIR/.installed-from"
		local pid
		pid=$(service_pid cognito "$(service_pattern cognito)")
		if [[ -n $pid ]]; then
			stop_pid cognito "$pid"
			rm -f "$(pid_file cognito)"
		fi
	fi
}

up_cognito() {
	install_cognito_local
	ensure_service cognito "${BAASMIGRATE_COGNITO_PORT:-}" 60 cognito_check cognito_start
	env_line COGNITO_ENDPOINT "http://127.0.0.1:$SERVICE_PORT"
}

# --- main ---------------------------------------------------------------------

write_env_file() {
	local tmp=$ENV_FILE.tmp
	(
		umask 077 # it holds passwords
		{
			printf '# Written by scripts/services-up.sh at %s; rewritten on every run.\n' "$(date -u +%FT%TZ)"
			printf '# Use: . .local/services.env   (Go tests read it via internal/testenv)\n'
			printf "export GCLOUD_PROJECT='%s'\n" "$DEMO_PROJECT"
			printf "export GOOGLE_CLOUD_PROJECT='%s'\n" "$DEMO_PROJECT"
			printf '%s\n' "${ENV_LINES[@]}"
		} >"$tmp"
	)
	mv -f "$tmp" "$ENV_FILE"
}

print_summary() {
	local row name pid addr state
	printf '\n%-13s %-8s %-22s %s\n' SERVICE PID ADDRESS STATE >&2
	for row in "${SUMMARY[@]}"; do
		IFS='|' read -r name pid addr state <<<"$row"
		printf '%-13s %-8s %-22s %s\n' "$name" "$pid" "$addr" "$state" >&2
	done
	printf '\nenv: %s   logs: %s/\n' "$ENV_FILE" "$LOG_DIR" >&2
}

main() {
	local t0
	t0=$(now_ms)
	command -v go >/dev/null 2>&1 || die "go is not on PATH"
	command -v curl >/dev/null 2>&1 || apt_install curl
	with_lock
	mkdir -p "$BIN_DIR" "$RUN_DIR" "$LOG_DIR"
	# The env file is replaced atomically at the end, so tests of someone
	# else sharing this checkout never see it missing during a run. A failed
	# run removes it: tests would otherwise dial dead ports instead of
	# reporting the service as missing.
	trap 'status=$?; ((status == 0)) || rm -f "$ENV_FILE"' EXIT
	up_postgres
	up_auth
	up_firestoreemu
	up_gcs
	up_minio
	up_cognito
	up_dynamodb
	write_env_file
	print_summary
	log "stack ready in $((($(now_ms) - t0) / 1000)).$(((($(now_ms) - t0) % 1000) / 100))s"
}

main "$@"
