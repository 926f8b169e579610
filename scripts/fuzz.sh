#!/usr/bin/env bash
# scripts/fuzz.sh — the `make fuzz` target: find every native Go fuzz target
# (func FuzzXxx(f *testing.F)) in the module and run each, one at a time, for
# FUZZTIME (default 30s). Fails when any target finds a failing input, and
# names each such target and the file Go wrote the input to
# (testdata/fuzz/FuzzXxx/…: commit it as a seed once the bug is fixed).
#
#   FUZZTIME=2m make fuzz          longer runs
#   FUZZ_PACKAGES=./mappings/...   only these packages (default ./...)
#
# The seed corpora (f.Add and testdata/fuzz) already run as ordinary tests
# under `make test`; this only adds the random exploration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZTIME=${FUZZTIME:-30s}
# Minimizing a failing input may take long on targets that touch files;
# a short bound keeps a find from looking like a hang.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}
read -r -a pkgs <<<"${FUZZ_PACKAGES:-./...}"

log() { printf '[fuzz] %s\n' "$*" >&2; }

# Packages whose test files declare a Fuzz function (a cheap grep, so only
# those test binaries are compiled), then their fuzz targets as reported by
# `go test -list '^Fuzz'` — the authority: it sees exactly what -fuzz can
# run. It prints every matching top-level name (tests, benchmarks and
# examples too when they match), so keep the Fuzz* lines only.
targets=()
while read -r pkg dir files; do
	[[ -n $pkg && -n $files ]] || continue
	# shellcheck disable=SC2086 # $files is a list of file names (no spaces in Go file names here)
	(cd "$dir" && grep -qE '^func Fuzz[A-Za-z0-9_]*\(' $files) || continue
	if ! out=$(go test -list '^Fuzz' "$pkg" 2>&1); then
		log "go test -list failed in $pkg:"
		printf '%s\n' "$out" >&2
		exit 1
	fi
	while read -r name; do
		if [[ $name =~ ^Fuzz[A-Za-z0-9_]*$ ]]; then targets+=("$pkg $name"); fi
	done <<<"$out"
done < <(go list -f '{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}' "${pkgs[@]}")

if ((${#targets[@]} == 0)); then
	log "no fuzz targets found in ${pkgs[*]}"
	exit 0
fi
log "${#targets[@]} fuzz targets, ${FUZZTIME} each:"
printf '    %s\n' "${targets[@]}" >&2

failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	log "$pkg $name (-fuzztime $FUZZTIME)"
	logf=$(mktemp)
	# -run '^$': no ordinary tests; ^NAME$: exactly this target (go test
	# refuses -fuzz patterns matching more than one).
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" 2>&1 | tee "$logf"; then
		rm -f "$logf"
		continue
	fi
	input=$(grep -oE 'testdata/fuzz/[^ ]+' "$logf" | tail -n1 || true)
	failed+=("$pkg $name${input:+ (failing input: $(go list -f '{{.Dir}}' "$pkg")/$input)}")
	rm -f "$logf"
done

if ((${#failed[@]} > 0)); then
	log "FAILED: ${#failed[@]} of ${#targets[@]} fuzz targets found a failing input:"
	printf '    %s\n' "${failed[@]}" >&2
	exit 1
fi
log "all ${#targets[@]} fuzz targets ran ${FUZZTIME} without finding a failing input"
