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
	local name pid bin i
	with_lock
	rm -f "$ENV_FILE"
	for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
		name=${SERVICES[i]}
		pid=$(service_pid "$name" "$(service_pattern "$name")")
		if [[ -n $pid ]]; then
			stop_pid "$name" "$pid"
			log "$name: stopped (pid $pid)"
		elif [[ -e $(pid_file "$name") ]]; then
			log "$name: pid file named no running $name; removed it"
		fi
		rm -f "$(pid_file "$name")"
	done
	if pg_running; then
		bin=$(find_pg_bin)
		as_pg "$bin/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null ||
			die "postgres: pg_ctl stop failed; see $LOG_DIR/postgres.log"
		log "postgres: stopped"
	fi
	rm -f "$(pid_file postgres)"
}

main "$@"
