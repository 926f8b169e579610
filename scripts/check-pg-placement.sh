#!/usr/bin/env bash
# scripts/check-pg-placement.sh — checks that services-up places the
# PostgreSQL cluster where the postgres user can run it when a checkout lives
# under a directory closed to others (a mode-700 home, a `mktemp -d`
# directory), and that services-down finds it there. Needs root (that is
# when the server runs as postgres). Starts only PostgreSQL, on a free port,
# from a throwaway clone, and removes everything it made.
#
#   scripts/check-pg-placement.sh [REV]     REV of this repository to clone (default HEAD)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=${1:-HEAD}
[[ $EUID -eq 0 ]] || {
	echo "check-pg-placement: skipped: needs root"
	exit 0
}

tmp=$(mktemp -d)
chmod 700 "$tmp"
clone=$tmp/repo
cleanup() {
	# Stop whatever the clone's scripts started, wherever they put it.
	(cd "$clone" 2>/dev/null && scripts/services-down.sh >/dev/null 2>&1) || true
	if [[ -s $clone/.local/pg-location ]]; then rm -rf "$(cat "$clone/.local/pg-location")"; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
git clone -q "$repo" "$clone"
git -C "$clone" checkout -q "$rev"

# Only the PostgreSQL part of services-up: its functions, then up_postgres.
up() {
	(cd "$clone" && bash -c '
		set -euo pipefail
		. scripts/lib.sh
		source <(sed -e "/^\. .*lib\.sh\"$/d" -e "/^main \"\$@\"$/d" scripts/services-up.sh)
		with_lock
		mkdir -p "$BIN_DIR" "$RUN_DIR" "$LOG_DIR"
		up_postgres
		printf "%s\n" "$PG_DATA"
	')
}

echo "== services-up (PostgreSQL only) in $clone (mode 700 parent)"
if ! data=$(up); then
	echo "FAIL: services-up could not start PostgreSQL under a directory postgres cannot reach"
	exit 1
fi
data=$(tail -n1 <<<"$data")
echo "cluster data directory: $data"
runuser -u postgres -- test -r "$data/PG_VERSION" || {
	echo "FAIL: postgres cannot read $data"
	exit 1
}
[[ -f $data/postmaster.pid ]] || {
	echo "FAIL: no postmaster running in $data"
	exit 1
}
echo "== services-up again reuses it"
data2=$(up | tail -n1)
[[ $data2 == "$data" ]] || {
	echo "FAIL: second services-up used $data2, not $data"
	exit 1
}
echo "== services-down stops it"
(cd "$clone" && scripts/services-down.sh)
if [[ -f $data/postmaster.pid ]]; then
	echo "FAIL: services-down left the postmaster of $data running"
	exit 1
fi
echo "OK: the cluster ran from $data and services-down stopped it"
