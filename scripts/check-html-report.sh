#!/usr/bin/env bash
# scripts/check-html-report.sh [REPORT.html] — render an HTML report of
# `baasmigrate plan/verify --format html` in headless Chromium (Debian's
# package, installed when missing) and check what a reader would see: the
# verdict, a row per table, the chart's bars. Writes a screenshot beside the
# report.
#
# Without an argument it makes a report first: it runs the demo's verify
# after tampering with one row of the demo database (run `make demo` before).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v chromium >/dev/null; then
	echo "[check-html-report] installing Debian's chromium" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi

report=${1:-}
if [[ -z $report ]]; then
	set -a
	# shellcheck source=/dev/null
	. .local/services.env
	set +a
	target="${DATABASE_URL%%\?*}"
	target="${target%/*}/baasmigrate_demo?sslmode=disable"
	psql -q "$target" -c "UPDATE users SET name = 'tampered' WHERE id = 'user0001'" >/dev/null
	report=.local/demo/verify.html
	go build -o bin/baasmigrate ./cmd/baasmigrate
	bin/baasmigrate verify --only documents --firebase-project "${DEMO_PROJECT:-demo-baasmigrate}" \
		--postgres "$target" --format html --out "$report" || [[ $? == 1 ]]
	# Put the demo back as it was.
	bin/baasmigrate migrate --only documents --firebase-project "${DEMO_PROJECT:-demo-baasmigrate}" \
		--postgres "$target" --mapping .local/demo/mapping.yaml --restart >/dev/null
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
	--disable-component-update --disable-sync "--user-data-dir=$profile")
url="file://$(realpath "$report")"
dom=$(chromium "${flags[@]}" --dump-dom "$url" 2>/dev/null)
shot="${report%.html}.png"
chromium "${flags[@]}" --window-size=1200,1600 --screenshot="$shot" "$url" >/dev/null 2>&1

fail() { echo "check-html-report: $report: $*" >&2; exit 1; }
grep -q 'id="verdict"' <<<"$dom" || fail "no verdict in the rendered page"
rows=$(grep -o 'data-table="[^"]*"' <<<"$dom" | wc -l)
bars=$(grep -o '<rect' <<<"$dom" | wc -l)
((rows > 0)) || fail "no table rows rendered"
((bars > 0)) || fail "no chart bars rendered"
[[ -s $shot ]] || fail "Chromium wrote no screenshot"
echo "check-html-report: $report renders in Chromium: $rows table rows, $bars bars; screenshot $shot"
