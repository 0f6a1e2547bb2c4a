#!/usr/bin/env python3
"""Scrapes a courier's /metrics the way Prometheus would and checks it.

Usage: check_metrics.py METRICS_URL EXPECTED_JSON

The text is read with prometheus_client's own parser (the reference
implementation of the format), installed here when missing: pip, then pip
with --break-system-packages, then a virtualenv in $TMPDIR.

EXPECTED_JSON (written by the Swift test from the jobs it pushed):
  {"counters":   {"courier_jobs_total": [[{labels}, value], ...], ...},   # exactly these series
   "histograms": {"courier_job_duration_seconds": [[{labels}, count], ...]},  # exactly these series, by _count
   "gauges":     {"courier_jobs_in_flight": [[{}, 0]], ...},               # these series (others may exist)
   "absent":     ["courier_redis_errors", ...],                            # families with no series
   "min_sums":   {"courier_job_latency_seconds": [[{labels}, seconds]]}}   # _sum at least this
Prints one line per check and a closing "ops: N passed, M failed"; exits 1 on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request


def ensure_prometheus_client():
    try:
        import prometheus_client.parser  # noqa: F401
        return
    except ImportError:
        pass
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "prometheus-client"]
    for extra in ([], ["--break-system-packages"], ["--user", "--break-system-packages"]):
        if subprocess.call(pip + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            try:
                import importlib
                importlib.invalidate_caches()
                import prometheus_client.parser  # noqa: F401
                return
            except ImportError:
                continue
    # Last resort: a virtualenv of our own, and run this script again inside it.
    venv = os.path.join(tempfile.gettempdir(), "courier-ops-venv")
    python = os.path.join(venv, "bin", "python3")
    if os.environ.get("COURIER_OPS_IN_VENV"):
        sys.exit("prometheus_client could not be installed")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "prometheus-client"])
    os.environ["COURIER_OPS_IN_VENV"] = "1"
    os.execv(python, [python] + sys.argv)


def main():
    url, expected_path = sys.argv[1], sys.argv[2]
    ensure_prometheus_client()
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=10).read().decode("utf-8")
    expected = json.load(open(expected_path))
    # Families by the name the parser gives them (counters without _total), samples by name.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {}
    for f in families.values():
        for s in f.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))

    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + what)
        if ok:
            passed += 1
        else:
            failed += 1

    def key(labels):
        return tuple(sorted(labels.items()))

    for name, series in expected.get("counters", {}).items():
        family = name[: -len("_total")] if name.endswith("_total") else name
        check(family in families and families[family].type == "counter", f"{name} is a counter")
        got = {key(l): v for l, v in samples.get(name, [])}
        want = {key(l): float(v) for l, v in series}
        check(got == want, f"{name}: {sorted(want.items())} == {sorted(got.items())}")
    for name, series in expected.get("histograms", {}).items():
        check(name in families and families[name].type == "histogram", f"{name} is a histogram")
        got = {key(l): v for l, v in samples.get(name + "_count", [])}
        want = {key(l): float(v) for l, v in series}
        check(got == want, f"{name}_count: {sorted(want.items())} == {sorted(got.items())}")
        # Buckets rise to +Inf, which equals _count.
        by_series = {}
        for labels, value in samples.get(name + "_bucket", []):
            rest = dict(labels)
            le = rest.pop("le")
            by_series.setdefault(key(rest), []).append((float(le), value))
        for k, buckets in by_series.items():
            buckets.sort()
            values = [v for _, v in buckets]
            check(values == sorted(values) and buckets[-1][0] == float("inf") and values[-1] == got.get(k),
                  f"{name}{dict(k)}: buckets rise to +Inf = _count")
    for name, series in expected.get("min_sums", {}).items():
        got = {key(l): v for l, v in samples.get(name + "_sum", [])}
        for labels, minimum in series:
            value = got.get(key(labels))
            check(value is not None and value >= minimum, f"{name}_sum{labels} = {value} >= {minimum}")
    for name, series in expected.get("gauges", {}).items():
        check(name in families and families[name].type == "gauge", f"{name} is a gauge")
        got = {key(l): v for l, v in samples.get(name, [])}
        for labels, value in series:
            check(got.get(key(labels)) == float(value), f"{name}{labels} == {value} (got {got.get(key(labels))})")
    for family in expected.get("absent", []):
        check(family not in families, f"{family} has no series")

    print(f"ops: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
