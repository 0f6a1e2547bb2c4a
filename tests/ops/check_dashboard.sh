#!/usr/bin/env bash
# tests/ops/check_dashboard.sh: checks the Grafana dashboard (tests/ops/check_dashboard.py).
#
#   tests/ops/check_dashboard.sh                      self-test, then the repo's dashboard
#                                                     against tests/ops/fixtures/scrape.txt
#   tests/ops/check_dashboard.sh DASHBOARD SCRAPE     one dashboard against one scrape
#                                                     (curl -s localhost:7433/metrics > SCRAPE)
#
# Needs Python's prometheus_client: uses a python3 that has it, else installs
# Debian's python3-prometheus-client (as root), else pip-installs
# prometheus-client into a venv (COURIER_OPS_TOOLS, default
# /var/cache/courier/ops-tools). Last line: "dashboard: N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${COURIER_OPS_TOOLS:-/var/cache/courier/ops-tools}"
say() { echo "check_dashboard: $*" >&2; }
fail() { say "$*"; echo "dashboard: 0 passed, 1 failed"; exit 1; }

has_client() { "$1" -c 'import prometheus_client.parser' 2>/dev/null; }
python=""
for candidate in python3 /usr/bin/python3 "$tools/bin/python"; do
  if command -v "$candidate" >/dev/null && has_client "$candidate"; then python="$candidate"; break; fi
done
if [[ -z $python && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  say "installing python3-prometheus-client (apt)"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-prometheus-client >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-prometheus-client >/dev/null 2>&1; }; then
    has_client /usr/bin/python3 && python=/usr/bin/python3
  fi
fi
if [[ -z $python ]]; then
  if [[ ! -x $tools/bin/pip ]]; then
    mkdir -p "$(dirname "$tools")"
    python3 -m venv "$tools" >&2 || fail "python3 -m venv $tools failed (apt-get install python3-venv)"
  fi
  say "pip install prometheus-client (into $tools)"
  timeout 300 "$tools/bin/pip" install -q --disable-pip-version-check prometheus-client >&2 ||
    fail "pip install prometheus-client failed"
  python="$tools/bin/python"
fi

if (($# == 0)); then
  exec "$python" "$here/check_dashboard.py" --self-test
fi
exec "$python" "$here/check_dashboard.py" "$@"
