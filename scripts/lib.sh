# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables below are used by the scripts that source this file
# scripts/lib.sh — helpers shared by services-up.sh and services-down.sh.
# Sourced, never executed. Callers have already done `set -euo pipefail`.
#
# Layout (everything gitignored under .local/):
#   .local/bin/          cached binaries built with `go install` / `go build`
#   .local/npm/          npm prefix holding firebase-tools
#   .local/run/NAME.pid  pid of a service we started; NAME.port its port(s)
#   .local/log/NAME.log  the service's stdout+stderr (previous run: NAME.log.1);
#                        install-*.log, build-*.log, initdb.log for the setup steps
#   .local/secrets/      generated passwords and keys (mode 600), kept across runs
#   .local/pg/data       the throwaway PostgreSQL cluster (owned by postgres). As
#                        root, when the postgres user cannot reach .local (a
#                        checkout under a mode-700 home or mktemp -d directory),
#                        it lives in /var/tmp/baasmigrate-HASH/ instead, with its
#                        log; .local/pg-location records where (see pg_place)
#   .local/minio/data    MinIO's drive; .local/gcs/data fake-gcs-server's objects
#   .local/firebase/     generated firebase.json, firebase-tools' config and debug log
#   .local/services.env  `export` lines that tests, the CLI and the demo read
#
# BAASMIGRATE_LOCAL_DIR moves all of it elsewhere (a second, independent stack).

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL_DIR=${BAASMIGRATE_LOCAL_DIR:-$REPO_ROOT/.local}
BIN_DIR=$LOCAL_DIR/bin
RUN_DIR=$LOCAL_DIR/run
LOG_DIR=$LOCAL_DIR/log
ENV_FILE=$LOCAL_DIR/services.env
NPM_DIR=$LOCAL_DIR/npm
# PG_HOME holds the cluster (data/) and, when it was moved out of .local, its
# log; PG_LOCATION_FILE records a moved location so that services-down and
# the next services-up find it.
PG_LOCATION_FILE=$LOCAL_DIR/pg-location
PG_HOME=$LOCAL_DIR/pg
if [[ -s $PG_LOCATION_FILE ]]; then
	PG_HOME=$(head -n1 "$PG_LOCATION_FILE")
fi
PG_DATA=$PG_HOME/data

# Pinned versions. Changing one here makes the next services-up reinstall it.
FAKE_GCS_MODULE=github.com/fsouza/fake-gcs-server
FAKE_GCS_VERSION=v1.56.1
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
# Keep in step with scripts/npm/package.json (and regenerate its lockfile:
# npm install --prefix scripts/npm --package-lock-only firebase-tools@VERSION).
FIREBASE_TOOLS_VERSION=15.34.2
# Keep in step with scripts/npm-cognito/package.json (and regenerate its
# lockfile: npm install --prefix scripts/npm-cognito --package-lock-only).
COGNITO_LOCAL_VERSION=5.3.0
COGNITO_NPM_DIR=$LOCAL_DIR/npm-cognito
# DynamoDB Local (AWS's DynamoDBLocal.jar) comes in the npm package
# amplify-dynamodb-simulator, pinned with its lockfile by scripts/npm-dynamodb
# and installed apart from firebase-tools.
DYNAMODB_SIMULATOR_VERSION=2.9.30
NPM_DYNAMODB_DIR=$LOCAL_DIR/npm-dynamodb
DYNAMODB_LOCAL_DIR=$NPM_DYNAMODB_DIR/node_modules/amplify-dynamodb-simulator/emulator

# A `demo-` project id keeps firebase-tools (and the SDKs) offline: they never
# look such a project up on Google's servers.
DEMO_PROJECT=demo-baasmigrate

log() { printf '[services] %s\n' "$*" >&2; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
	printf '[services] ERROR: %s\n' "$*" >&2
	exit 1
}

# npm_ci DIR LOG: npm ci into DIR (its package.json and lockfile already
# copied there), output to LOG. A registry connection that stalls is cut
# (npm's own fetch timeout is 5 min per request; a stalled install once
# hung CI for 15 min) and the install tried again, 3 times in all.
npm_ci() {
	local dir=$1 logfile=$2 attempt
	for attempt in 1 2 3; do
		if timeout 600 npm ci --prefix "$dir" --no-audit --no-fund --fetch-timeout=60000 --fetch-retries=4 >"$logfile" 2>&1; then
			return 0
		fi
		[[ $attempt == 3 ]] || warn "npm ci into $dir failed or stalled (attempt $attempt of 3; see $logfile); trying again"
	done
	return 1
}

# now_ms prints a monotonic-enough wall clock in milliseconds, for timings.
now_ms() { date +%s%3N; }

# with_lock runs the rest of the script under an exclusive lock on
# .local/run/services.lock, so two engineers (or two make targets) sharing one
# checkout never start the same service twice or race on pid/port files.
with_lock() {
	mkdir -p "$RUN_DIR"
	exec 9>"$RUN_DIR/services.lock"
	if ! flock -n 9; then
		log "another services-up/-down holds $RUN_DIR/services.lock; waiting (max 15 min)"
		flock -w 900 9 || die "timed out waiting for $RUN_DIR/services.lock"
	fi
}

# random_hex N prints N random bytes as hex: URL- and shell-safe secrets.
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# secret_file PATH BYTES prints the secret stored in PATH, creating it once.
# Secrets are kept (mode 600) because the data they protect (the Postgres
# cluster, MinIO's config) outlives a services-down.
secret_file() {
	local path=$1 bytes=$2
	if [[ ! -s $path ]]; then
		mkdir -p "$(dirname "$path")"
		(
			umask 077
			random_hex "$bytes" >"$path.tmp"
		)
		mv "$path.tmp" "$path"
	fi
	cat "$path"
}

# --- processes --------------------------------------------------------------

# pid_file NAME / port_file NAME: where a service's pid and port are kept.
pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
port_file() { printf '%s/%s.port' "$RUN_DIR" "$1"; }

# read_file PATH prints the file's first line, or nothing if it is missing.
read_file() { if [[ -s $1 ]]; then head -n1 "$1"; fi; }

# pid_matches PID PATTERN succeeds when PID is alive and its command line
# contains PATTERN. The pattern guards against a recycled pid: after a reboot
# or a crash the number in a pid file may belong to an unrelated process.
pid_matches() {
	local pid=$1 pattern=$2 cmdline
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *"$pattern"* ]]
}

# service_pid NAME PATTERN prints the pid of our running NAME, or nothing.
service_pid() {
	local pid
	pid=$(read_file "$(pid_file "$1")")
	if [[ -n $pid ]] && pid_matches "$pid" "$2"; then
		printf '%s' "$pid"
	fi
}

# rotate_log NAME keeps one previous log, so a restart does not hide why the
# last instance died, and logs do not grow without bound across runs.
rotate_log() {
	local f=$LOG_DIR/$1.log
	mkdir -p "$LOG_DIR"
	if [[ -e $f ]]; then mv -f "$f" "$f.1"; fi
	: >"$f"
}

# start_daemon NAME WORKDIR CMD... starts CMD in the background, detached in
# its own session (setsid) so a Ctrl-C aimed at `make test` does not kill the
# shared services, with stdin closed and output appended to .local/log/NAME.log.
# The subshell execs setsid which execs CMD (no fork: a background job of a
# non-interactive shell is not a process-group leader), so $! is CMD's pid.
start_daemon() {
	local name=$1 workdir=$2
	shift 2
	rotate_log "$name"
	# 9>&-: the daemon must not inherit the lock taken by with_lock, or it
	# would hold it for its whole life and block the next services-up.
	(cd "$workdir" && exec setsid "$@") </dev/null >>"$LOG_DIR/$name.log" 2>&1 9>&- &
	printf '%s\n' "$!" >"$(pid_file "$name")"
}

# stop_pid NAME PID: SIGTERM, wait up to 20 s, then SIGKILL. firebase-tools
# needs a few seconds for its clean shutdown, the Go servers exit at once.
stop_pid() {
	kill -TERM "$2" 2>/dev/null || return 0
	wait_exit "$1" "$2"
}

# wait_exit NAME PID waits up to 20 s for PID to exit, then SIGKILLs it.
wait_exit() {
	local name=$1 pid=$2 i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	warn "$name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

# SERVICES lists the services run as plain daemons (Postgres is driven by
# pg_ctl instead), in start order.
SERVICES=(auth firestoreemu fake-gcs minio cognito dynamodb)

# service_pattern NAME prints the command-line fragment that identifies our
# NAME: absolute paths under this checkout's .local, so another checkout's
# stack on the same machine is never mistaken for ours.
service_pattern() {
	case $1 in
	firestoreemu) printf '%s' "$BIN_DIR/firestoreemu " ;;
	auth) printf '%s' "$NPM_DIR/node_modules/firebase-tools/lib/bin/firebase.js emulators:start" ;;
	fake-gcs) printf '%s' "$BIN_DIR/fake-gcs-server " ;;
	minio) printf '%s' "$BIN_DIR/minio server " ;;
	cognito) printf '%s' "$COGNITO_NPM_DIR/node_modules/cognito-local/lib/bin/start.js" ;;
	dynamodb) printf '%s' "-jar $DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar " ;;
	*) die "unknown service $1" ;;
	esac
}

# --- postgres ---------------------------------------------------------------

# find_pg_bin prints the directory holding pg_ctl/initdb/postgres/psql of the
# newest installed PostgreSQL, or nothing. Debian keeps them in
# /usr/lib/postgresql/N/bin, which is not on PATH.
find_pg_bin() {
	local d best="" v bestv=0
	if command -v pg_ctl >/dev/null 2>&1; then
		best=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
		bestv=$(pg_major "$best")
	fi
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/pg_ctl && -x $d/initdb && -x $d/psql ]] || continue
		v=$(basename "$(dirname "$d")")
		if [[ $v =~ ^[0-9]+$ ]] && ((v > bestv)); then
			best=$d bestv=$v
		fi
	done
	[[ -z $best ]] || printf '%s' "$best"
}

# pg_major BINDIR prints the major version of the PostgreSQL in BINDIR
# ("pg_ctl (PostgreSQL) 15.18 (Debian ...)" -> 15).
pg_major() {
	"$1/pg_ctl" --version | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+(\.[0-9]+)*$/) { split($i, v, "."); print v[1]; exit } }'
}

# as_pg CMD... runs CMD as the `postgres` system user when we are root:
# initdb and postgres refuse to run as root. As a normal user it runs CMD as
# that user, who then owns the cluster.
as_pg() {
	if [[ $EUID -eq 0 ]]; then
		# From /: the caller's directory may be closed to postgres (paths
		# given are absolute).
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# pg_running succeeds when our cluster's postmaster is alive.
pg_running() {
	[[ -f $PG_DATA/PG_VERSION ]] || return 1
	local bin
	bin=$(find_pg_bin)
	[[ -n $bin ]] || return 1
	as_pg "$bin/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

# --- ports ------------------------------------------------------------------

# port_free PORT succeeds when nothing listens on 127.0.0.1:PORT (nor on the
# wildcard address, which would also make our bind fail). python3 tries a
# real bind; without python3 we fall back to a connect probe.
port_free() {
	local port=$1
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$port" <<-'EOF' 2>/dev/null
			import socket, sys
			s = socket.socket()
			s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
			try:
			    s.bind(("127.0.0.1", int(sys.argv[1])))
			except OSError:
			    sys.exit(1)
		EOF
	else
		! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
	fi
}

# PICKED_PORTS remembers ports chosen during this run, so two services that
# have not bound yet are never handed the same free port.
PICKED_PORTS=" "

# pick_port NAME [OVERRIDE] sets PICKED_PORT to the port NAME should listen
# on (a variable, not output: $(pick_port) would run in a subshell and lose
# the PICKED_PORTS bookkeeping):
#   1. OVERRIDE (from a BAASMIGRATE_*_PORT variable) if given — the user's
#      choice, used as is (we fail loudly if it is taken);
#   2. else the port NAME used last time (.local/run/NAME.port), if still
#      free — stable ports make logs and a developer's shell history useful;
#   3. else a random free port below the kernel's ephemeral range, so the
#      port cannot be grabbed later by some outgoing connection's local end.
# The result is recorded in .local/run/NAME.port.
pick_port() {
	local name=$1 override=${2:-} port lo hi i
	if [[ -n $override ]]; then
		[[ $override =~ ^[0-9]+$ ]] || die "$name: port override '$override' is not a number"
		port_free "$override" || die "$name: port $override (from its BAASMIGRATE_*_PORT override) is already in use on 127.0.0.1"
		port=$override
	else
		port=$(read_file "$(port_file "$name")")
		if [[ -z $port ]] || [[ $PICKED_PORTS == *" $port "* ]] || ! port_free "$port"; then
			port=
			read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
			hi=$((lo > 20000 ? lo : 32768))
			for ((i = 0; i < 200; i++)); do
				local candidate=$((15000 + RANDOM % (hi - 15000)))
				if [[ $PICKED_PORTS != *" $candidate "* ]] && port_free "$candidate"; then
					port=$candidate
					break
				fi
			done
			[[ -n $port ]] || die "$name: found no free port on 127.0.0.1 after 200 tries"
		fi
	fi
	PICKED_PORTS+="$port "
	printf '%s\n' "$port" >"$(port_file "$name")"
	PICKED_PORT=$port
}

# --- readiness ---------------------------------------------------------------

# wait_ready NAME PID TIMEOUT_S CHECK... polls CHECK every 0.2 s until it
# succeeds. It fails early when PID exits (no point waiting for a corpse) and
# after TIMEOUT_S, in both cases naming the service and its log file.
wait_ready() {
	local name=$1 pid=$2 timeout=$3 deadline
	shift 3
	deadline=$(($(now_ms) + timeout * 1000))
	until "$@" >/dev/null 2>&1; do
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			fail_service "$name" "exited during startup"
		fi
		if (($(now_ms) > deadline)); then
			# Do not leave a half-started process behind holding the port.
			[[ -z $pid ]] || stop_pid "$name" "$pid"
			fail_service "$name" "did not answer within ${timeout}s (stopped it)"
		fi
		sleep 0.2
	done
}

# fail_service NAME WHY prints the tail of NAME's log and exits non-zero.
fail_service() {
	local name=$1 why=$2 logf=$LOG_DIR/$1.log
	printf '[services] ERROR: %s %s; its log is %s\n' "$name" "$why" "$logf" >&2
	if [[ -s $logf ]]; then
		printf '[services] last lines of %s:\n' "$logf" >&2
		tail -n 20 "$logf" | sed 's/^/    /' >&2
	fi
	exit 1
}

# http_ok URL [GREP_PATTERN]: URL answers 2xx (and its body matches).
http_ok() {
	local body
	body=$(curl -fsS --max-time 2 "$1") || return 1
	[[ -z ${2:-} ]] || grep -Eq "$2" <<<"$body"
}

# --- installs ----------------------------------------------------------------

# go_module_version BINARY MODULE prints the version of MODULE that BINARY
# was built from (per `go version -m`), or nothing.
go_module_version() {
	[[ -x $1 ]] || return 0
	go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m { print $3 }'
}

# ensure_go_install NAME MODULE VERSION: `go install MODULE@VERSION` into
# .local/bin unless the binary there already reports exactly that version.
ensure_go_install() {
	local name=$1 module=$2 version=$3 have start
	have=$(go_module_version "$BIN_DIR/$name" "$module")
	if [[ $have == "$version" ]]; then
		return 0
	fi
	log "$name: installing $module@$version (have '${have:-none}'); first time takes minutes"
	start=$(now_ms)
	mkdir -p "$LOG_DIR"
	if ! GOBIN=$BIN_DIR go install "$module@$version" >"$LOG_DIR/install-$name.log" 2>&1; then
		die "$name: go install $module@$version failed; see $LOG_DIR/install-$name.log"
	fi
	log "$name: installed in $((($(now_ms) - start) / 1000))s"
}

# apt_install PKG...: non-interactive Debian install (root only).
apt_install() {
	[[ $EUID -eq 0 ]] || die "need root to apt-get install $*; install it yourself and re-run"
	log "apt-get install $*"
	mkdir -p "$LOG_DIR"
	{
		DEBIAN_FRONTEND=noninteractive apt-get update &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
	} >"$LOG_DIR/install-apt.log" 2>&1 || die "apt-get install $* failed; see $LOG_DIR/install-apt.log"
}
