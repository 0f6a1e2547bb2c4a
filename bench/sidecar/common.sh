# Shared by the sidecar benchmark scripts: a temp dir, and every process
# started (appended to `pids`) stopped on exit.
# shellcheck shell=bash
work="$(mktemp -d -t "courier-${1:-bench}.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
free_port() { ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close'; }
