#!/usr/bin/env bash
# scripts/services-down.sh — stop the services that services-up.sh started.
#
# Stops only what this checkout's .local/ started: daemons by pid file (the
# pid must still run the expected command line), PostgreSQL with
# `pg_ctl stop` on .local/pg/data. Keeps caches (binaries, npm prefix), the
# Postgres cluster, MinIO's data, secrets and the chosen ports, so the next
# services-up is fast and reuses the same ports. Removes .local/services.env:
# it would name dead ports.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	local name pid bin t0
	local -A pids=()
	with_lock
	rm -f "$ENV_FILE"
	# SIGTERM everything first, then wait: each takes ~2 s to shut down
	# gracefully, so stopping them one by one would add those up.
	t0=$(now_ms)
	for name in "${SERVICES[@]}"; do
		pid=$(service_pid "$name" "$(service_pattern "$name")")
		if [[ -n $pid ]]; then
			kill -TERM "$pid" 2>/dev/null || true
			pids[$name]=$pid
		elif [[ -e $(pid_file "$name") ]]; then
			log "$name: pid file named no running $name; removed it"
		fi
	done
	for name in "${SERVICES[@]}"; do
		if [[ -n ${pids[$name]:-} ]]; then
			wait_exit "$name" "${pids[$name]}"
			log "$name: stopped (pid ${pids[$name]}) after $(($(now_ms) - t0)) ms"
		fi
		rm -f "$(pid_file "$name")"
	done
	if pg_running; then
		t0=$(now_ms)
		bin=$(find_pg_bin)
		as_pg "$bin/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null ||
			die "postgres: pg_ctl stop failed; see $LOG_DIR/postgres.log"
		log "postgres: stopped in $(($(now_ms) - t0)) ms"
	fi
	rm -f "$(pid_file postgres)"
}

main "$@"
