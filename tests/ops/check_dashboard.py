#!/usr/bin/env python3
"""Checks a Grafana dashboard against a Prometheus scrape of courier.

    check_dashboard.py DASHBOARD.json SCRAPE.txt   check one dashboard
    check_dashboard.py --self-test                 check the checker, then the
                                                   repo's dashboard against
                                                   tests/ops/fixtures/scrape.txt

1. The JSON is a dashboard Grafana can import: a title, uid and schemaVersion,
   a templating list with the `queue` and `tenant` variables, a DS_PROMETHEUS
   input; every panel (rows' nested panels too) with a unique integer id, a
   type, a title and a gridPos inside the 24-column grid; every panel that is
   not a row with targets, each with a refId and a non-empty PromQL `expr`
   whose variables ($queue, …) are defined or Grafana's own ($__rate_interval).
2. Every metric name the queries use is in the scrape. Histogram series
   (`_bucket`, `_sum`, `_count`) count as their family; the scrape is read
   with prometheus_client's own text parser
   (prometheus_client.parser.text_string_to_metric_families).

A metric a scrape lacks is named in a "missing" line. A fresh courier prints
a labelled family only with its first series: scrape one that has run jobs.

Needs prometheus_client: Debian `apt-get install python3-prometheus-client`,
or `pip install prometheus-client` (tests/ops/check_dashboard.sh finds or
installs it). Last line: "dashboard: N passed, M failed"; exit 1 on any failure.
"""

import json
import os
import re
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - told, not hidden
    sys.stderr.write(
        "check_dashboard.py needs prometheus_client: apt-get install python3-prometheus-client"
        " (or pip install prometheus-client; tests/ops/check_dashboard.sh does it)\n")
    sys.exit(2)

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                     "__range_ms", "__name", "__dashboard", "__org", "__user", "__timeFilter"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                "unless", "offset", "inf", "nan", "atan2", "start", "end"}
AGGREGATIONS = ("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio")

# PromQL text the metric names are not in: string literals, label matchers,
# range/subquery brackets, and the label lists of by/without/on/ignoring/group_*.
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
RANGES = re.compile(r"\[[^\[\]]*\]")
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
VARIABLES = re.compile(r"\$\{?(\w+)(?::\w+)?\}?|\[\[(\w+)\]\]")
IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr):
    """The metric names a PromQL expression selects (functions, keywords,
    labels, durations and Grafana variables left out)."""
    text = STRINGS.sub('""', expr)
    text = MATCHERS.sub(" ", text)
    text = RANGES.sub(" ", text)
    text = LABEL_LISTS.sub(" ", text)
    text = VARIABLES.sub(" ", text)
    names = []
    for match in IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.append(name)
    return names


def variables_used(expr):
    return {a or b for a, b in VARIABLES.findall(expr)}


def scrape_names(text):
    """(family names, sample names) of a Prometheus text scrape."""
    families, samples = set(), set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        if family.type == "counter":  # the parser drops a counter family's _total
            families.add(family.name + "_total")
        for sample in family.samples:
            samples.add(sample.name)
    return families, samples


def family_of(name, families):
    """The name to look up: a histogram series' family when the suffix is one."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            return name[: -len(suffix)]
    return name


def all_panels(panels):
    for panel in panels or []:
        yield panel
        yield from all_panels(panel.get("panels"))


def dashboard_problems(dash):
    """What makes the JSON not an importable dashboard; [] when it is one."""
    problems = []
    if not isinstance(dash, dict):
        return ["the dashboard is not a JSON object"]
    for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list), ("templating", dict)):
        if not isinstance(dash.get(key), kind):
            problems.append(f"top-level {key!r} missing or not a {kind.__name__}")
    inputs = [i.get("name") for i in dash.get("__inputs", []) if isinstance(i, dict)]
    if "DS_PROMETHEUS" not in inputs:
        problems.append("no DS_PROMETHEUS in __inputs (the data source chosen at import)")
    variables = [v.get("name") for v in (dash.get("templating") or {}).get("list", []) if isinstance(v, dict)]
    for wanted in ("queue", "tenant"):
        if wanted not in variables:
            problems.append(f"templating has no {wanted!r} variable")
    seen_ids = set()
    panels = list(all_panels(dash.get("panels") if isinstance(dash.get("panels"), list) else []))
    if not panels:
        problems.append("no panels")
    for panel in panels:
        title = panel.get("title", "?") if isinstance(panel, dict) else "?"
        if not isinstance(panel, dict):
            problems.append("a panel is not an object")
            continue
        pid = panel.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            problems.append(f"panel {title!r} has no integer id")
        elif pid in seen_ids:
            problems.append(f"panel {title!r} reuses id {pid}")
        else:
            seen_ids.add(pid)
        for key in ("type", "title"):
            if not isinstance(panel.get(key), str) or not panel.get(key):
                problems.append(f"panel {pid} has no {key}")
        grid = panel.get("gridPos")
        if not isinstance(grid, dict) or not all(isinstance(grid.get(k), int) for k in "hwxy"):
            problems.append(f"panel {title!r} has no gridPos with integer h, w, x, y")
        elif not (0 < grid["w"] <= 24 and 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0 and grid["y"] >= 0):
            problems.append(f"panel {title!r} gridPos {grid} is outside the 24-column grid")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets")
        if not isinstance(targets, list) or not targets:
            problems.append(f"panel {title!r} has no targets")
            continue
        for target in targets:
            expr = target.get("expr") if isinstance(target, dict) else None
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"panel {title!r} has a target without a PromQL expr")
                continue
            if not target.get("refId"):
                problems.append(f"panel {title!r} has a target without a refId")
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                problems.append(f"panel {title!r}: unbalanced brackets in {expr!r}")
            for var in variables_used(expr) - set(variables) - GRAFANA_VARIABLES:
                problems.append(f"panel {title!r} uses ${var}, which the templating does not define")
            if not metric_names(expr):
                problems.append(f"panel {title!r}: no metric in {expr!r}")
    return problems


def queried_metrics(dash):
    """{metric name: [panel titles]} over every target of every panel."""
    used = {}
    for panel in all_panels(dash.get("panels", [])):
        for target in panel.get("targets") or []:
            for name in metric_names(target.get("expr", "")):
                used.setdefault(name, [])
                if panel.get("title") not in used[name]:
                    used[name].append(panel.get("title"))
    return used


def missing_metrics(dash, scrape_text):
    """[(family name, panel titles)] of the queried metrics the scrape lacks."""
    families, samples = scrape_names(scrape_text)
    missing = {}
    for name, titles in queried_metrics(dash).items():
        if name in samples or name in families:
            continue
        base = family_of(name, families)
        if base in families:
            continue
        for suffix in HISTOGRAM_SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        missing.setdefault(base, []).extend(t for t in titles if t not in missing.get(base, []))
    return sorted(missing.items())


def check(dash_path, scrape_path, out=sys.stdout):
    """Prints what is wrong; returns (passed, failed) counts (one check each)."""
    passed = failed = 0
    try:
        with open(dash_path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAIL {dash_path}: not readable JSON: {e}", file=out)
        return 0, 2
    problems = dashboard_problems(dash)
    for p in problems:
        print(f"FAIL {dash_path}: {p}", file=out)
    if problems:
        failed += 1
    else:
        passed += 1
        print(f"ok   {dash_path}: a valid dashboard ({sum(1 for _ in all_panels(dash['panels']))} panels)", file=out)
    try:
        with open(scrape_path, encoding="utf-8") as f:
            scrape = f.read()
        missing = missing_metrics(dash, scrape)
    except (OSError, ValueError) as e:
        print(f"FAIL {scrape_path}: not a readable Prometheus text scrape: {e}", file=out)
        return passed, failed + 1
    for name, titles in missing:
        print(f"FAIL missing metric {name} (panels: {', '.join(titles)}) not in {scrape_path}", file=out)
    if missing:
        failed += 1
    else:
        passed += 1
        print(f"ok   every metric the queries use ({len(queried_metrics(dash))}) is in {scrape_path}", file=out)
    return passed, failed


def self_test():
    """Checks the checker on small cases, then the repo's dashboard."""
    import io
    import tempfile

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    repo_dash = os.path.join(root, "deploy", "grafana", "courier-dashboard.json")
    fixture = os.path.join(here, "fixtures", "scrape.txt")
    results = []

    def expect(name, ok):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} self-test: {name}")

    expect("metric names from PromQL", metric_names(
        'histogram_quantile(0.95, sum by (queue, le) (rate(courier_job_duration_seconds_bucket'
        '{queue=~"$queue",tenant=~"a|b"}[$__rate_interval])))') == ["courier_job_duration_seconds_bucket"])
    expect("binary operators, on(), offset, numbers", metric_names(
        'sum(rate(a_total[5m] offset 1h)) / on(instance) group_left(x) sum(rate(b_total[5m])) * 100 > bool 0.5e3')
        == ["a_total", "b_total"])
    expect("label values that look like names are skipped", metric_names(
        'courier_set_size{set="dead", queue!~"x_total"} > 0 and courier_up') == ["courier_set_size", "courier_up"])
    expect("${var} and [[var]] are variables", variables_used('x{a=~"${queue}",b=~"[[tenant]]"}[$__range]')
           == {"queue", "tenant", "__range"})

    scrape = ("# TYPE c_total counter\nc_total{q=\"a\"} 1\n# TYPE h_seconds histogram\n"
              "h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_sum 1\nh_seconds_count 1\n# TYPE g gauge\ng 1.0\n")
    families, samples = scrape_names(scrape)
    expect("the scrape's names (counter _total kept, histogram family)",
           {"c_total", "h_seconds", "g"} <= families | samples and "h_seconds_bucket" in samples)

    with open(repo_dash, encoding="utf-8") as f:
        dash = json.load(f)
    expect("the repo's dashboard is valid", dashboard_problems(dash) == [])
    used = set(queried_metrics(dash))
    expect("it queries every courier metric it should", {
        "courier_jobs_total", "courier_job_duration_seconds_bucket", "courier_job_latency_seconds_bucket",
        "courier_jobs_in_flight", "courier_concurrency_limit", "courier_retries_scheduled_total",
        "courier_jobs_dead_total", "courier_set_size", "courier_queue_depth", "courier_queue_latency_seconds",
        "courier_breaker_state", "courier_breaker_transitions_total", "courier_redis_errors_total",
        "courier_executor_errors_total", "courier_recovered_jobs_total", "courier_redis_round_trips_total",
        "courier_exhausted_hooks_total", "courier_cancels_total"} <= used)
    with open(fixture, encoding="utf-8") as f:
        full = f.read()
    expect("the fixture scrape has every metric", missing_metrics(dash, full) == [])

    # A scrape without two families: both named (a histogram by its family name).
    cut = "\n".join(l for l in full.splitlines()
                    if "courier_job_latency_seconds" not in l and "courier_set_size" not in l) + "\n"
    missing = [name for name, _ in missing_metrics(dash, cut)]
    expect("a scrape without two metrics fails naming both", missing == ["courier_job_latency_seconds", "courier_set_size"])

    with tempfile.TemporaryDirectory() as tmp:
        cut_path = os.path.join(tmp, "cut.txt")
        with open(cut_path, "w", encoding="utf-8") as f:
            f.write(cut)
        out = io.StringIO()
        passed, failed = check(repo_dash, cut_path, out)
        expect("check() reports the missing metric by name", failed == 1 and "missing metric courier_set_size" in out.getvalue())

        broken = json.loads(json.dumps(dash))
        broken["panels"][1]["id"] = broken["panels"][0]["id"]
        del broken["panels"][2]["gridPos"]
        broken["panels"][3]["targets"][0]["expr"] = ""
        broken["panels"][5]["targets"][0]["expr"] = 'sum(courier_jobs_total{queue=~"$nope"})'
        broken["templating"]["list"] = [v for v in broken["templating"]["list"] if v["name"] != "tenant"]
        problems = " | ".join(dashboard_problems(broken))
        expect("a broken dashboard fails on each fault",
               all(s in problems for s in ("reuses id", "no gridPos", "without a PromQL expr", "$nope", "no 'tenant' variable")))
        broken_path = os.path.join(tmp, "broken.json")
        with open(broken_path, "w", encoding="utf-8") as f:
            f.write("{not json")
        expect("unreadable JSON fails", check(broken_path, fixture, io.StringIO())[1] > 0)

    passed, failed = check(repo_dash, fixture)
    return sum(results) + passed, results.count(False) + failed


def main(argv):
    if argv[1:] == ["--self-test"]:
        passed, failed = self_test()
    elif len(argv) == 3:
        passed, failed = check(argv[1], argv[2])
    else:
        sys.stderr.write(__doc__)
        return 64
    print(f"dashboard: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
