#!/usr/bin/env python3
"""Checks deploy/kubernetes: schemas and the settings that must agree.

Run by tests/k8s/validate (which supplies a Python with kubernetes-validate,
PyYAML and jsonschema). Usage: check.py REPO_ROOT. One line per check, then
"k8s: N passed, M failed" (", K skipped" when kubectl is missing); exits 1
on any failure.

1. Schemas. Built-in kinds: kubernetes-validate --strict against Kubernetes
   1.30 (the oldest version the manifests are for) and the newest version
   the installed kubernetes-validate ships. KEDA's ScaledObject and
   TriggerAuthentication: jsonschema against tests/k8s/schemas/ (written
   from KEDA's documented fields). With kubectl: the kustomize renderings of
   deploy/kubernetes and deploy/kubernetes/keda too.
2. Agreement: probes on the right ports and paths, courier's grace period
   above preStop + -t, one Secret for COURIER_SECRET, the KEDA targets,
   capacity, PDBs, the Service, security settings.
3. Self-test: broken copies of the manifests must be caught.
"""
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import yaml

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
K8S = os.path.join(ROOT, "deploy", "kubernetes")
SCHEMAS = os.path.join(ROOT, "tests", "k8s", "schemas")
OLDEST = "1.30.0"
KEDA_SCHEMAS = {
    "ScaledObject": "keda-scaledobject-v1alpha1.json",
    "TriggerAuthentication": "keda-triggerauthentication-v1alpha1.json",
}
COURIER_OPS_PORT = 7433      # courier's --ops-port default
SIDECAR_PORT = 8088          # the port the docs and the Service use
SHUTDOWN_EXIT_MARGIN = 2     # push back + ~1 s for cancel answers + exit (docs/operations.md)
PUMA_WORKER_SHUTDOWN = 30    # Puma's worker_shutdown_timeout default (cluster mode)

passed = failed = skipped = 0


def report(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}" + (f": {detail}" if detail else ""))


def rel(path):
    return os.path.relpath(path, ROOT)


# ---------------------------------------------------------------- loading

def load_tree():
    """Every YAML document under deploy/kubernetes: [(path, doc)]."""
    out = []
    for dirpath, _dirs, files in os.walk(K8S):
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")):
                path = os.path.join(dirpath, f)
                with open(path) as fh:
                    for doc in yaml.safe_load_all(fh):
                        if doc:
                            out.append((path, doc))
    return sorted(out, key=lambda pd: pd[0])


def is_keda(doc):
    return str(doc.get("apiVersion", "")).startswith("keda.sh/")


def is_kustomization(doc):
    return str(doc.get("apiVersion", "")).startswith("kustomize.config.k8s.io/")


class Objects:
    """The manifests by kind and name, with helpers for what the checks read."""

    def __init__(self, docs):
        self.docs = docs
        self.by = {}
        for _path, doc in docs:
            if not is_kustomization(doc):
                self.by[(doc.get("kind"), doc.get("metadata", {}).get("name"))] = doc

    def get(self, kind, name):
        return self.by.get((kind, name))

    def all(self, kind):
        return [d for (k, _n), d in sorted(self.by.items()) if k == kind]

    def container(self, deployment, name=None):
        if not deployment:
            return None
        cs = deployment["spec"]["template"]["spec"].get("containers", [])
        if name is None:
            return cs[0] if cs else None
        return next((c for c in cs if c.get("name") == name), None)

    def env(self, container):
        """Environment as courier/the sidecar would see it: name -> value, or
        ("secret", name, key) for secret references. envFrom first, then env;
        an optional secretKeyRef does not hide a value already there."""
        resolved = {}
        for src in container.get("envFrom", []) or []:
            if "configMapRef" in src:
                cm = self.get("ConfigMap", src["configMapRef"]["name"]) or {}
                for k, v in (cm.get("data") or {}).items():
                    resolved[src.get("prefix", "") + k] = str(v)
        for e in container.get("env", []) or []:
            if "value" in e:
                resolved[e["name"]] = str(e["value"])
            elif "valueFrom" in e:
                vf = e["valueFrom"]
                if "configMapKeyRef" in vf:
                    ref = vf["configMapKeyRef"]
                    cm = self.get("ConfigMap", ref["name"]) or {}
                    if ref["key"] in (cm.get("data") or {}):
                        resolved[e["name"]] = str(cm["data"][ref["key"]])
                elif "secretKeyRef" in vf:
                    ref = vf["secretKeyRef"]
                    if ref.get("optional") and e["name"] in resolved:
                        continue
                    resolved[e["name"]] = ("secret", ref["name"], ref["key"])
        return resolved


def flag_value(argv, *names):
    """The value of the last --flag V / --flag=V / -cV among argv."""
    value = None
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                value = argv[i + 1]
            elif n.startswith("--") and a.startswith(n + "="):
                value = a[len(n) + 1:]
            elif len(n) == 2 and a.startswith(n) and len(a) > 2 and not a.startswith("--"):
                value = a[2:]
    return value


def argv_of(container):
    return [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]


def courier_settings(objs):
    dep = objs.get("Deployment", "courier")
    c = objs.container(dep, "courier")
    env = objs.env(c)
    argv = argv_of(c)
    t = flag_value(argv, "-t", "--timeout") or env.get("COURIER_SHUTDOWN_TIMEOUT") or "25"
    conc = (flag_value(argv, "-c", "--concurrency") or env.get("COURIER_CONCURRENCY")
            or env.get("RAILS_MAX_THREADS") or "10")
    queues = [q.split(",")[0] for q in (env.get("COURIER_QUEUES") or "default").split()]
    qflags = [argv[i + 1].split(",")[0] for i, a in enumerate(argv[:-1]) if a in ("-q", "--queue")]
    return {"dep": dep, "container": c, "env": env, "t": float(t), "c": int(conc),
            "queues": qflags or queues}


def sidecar_settings(objs):
    dep = objs.get("Deployment", "courier-sidecar")
    c = objs.container(dep, "sidecar")
    env = objs.env(c)
    argv = argv_of(c)
    threads = flag_value(argv, "--threads") or env.get("RAILS_MAX_THREADS") or "5"
    return {"dep": dep, "container": c, "env": env, "argv": argv,
            "threads": int(threads), "workers": int(flag_value(argv, "--workers") or "1"),
            "port": int(flag_value(argv, "--port") or "8088"),
            "bind": flag_value(argv, "--bind") or "127.0.0.1"}


def port_number(container, port):
    """A probe's port (number or name) as a number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []) or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def probe_target(container, probe):
    p = (container.get(probe) or {}).get("httpGet")
    if not p:
        return None
    return (p.get("path"), port_number(container, p.get("port")))


def prestop_sleep(container):
    cmd = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    m = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)", " ".join(str(x) for x in cmd))
    return (float(m.group(1)) if m else 0.0), " ".join(str(x) for x in cmd)


def redis_hostport(url):
    m = re.match(r"^redis://(?:[^@/]*@)?(\[[^\]]+\]|[^:/?]+)(?::(\d+))?", url or "")
    return f"{m.group(1)}:{m.group(2) or '6379'}" if m else None


# ---------------------------------------------------------------- checks

def semantic_checks(objs):
    """[(name, ok, detail)] for the settings that must agree."""
    out = []

    def add(name, ok, detail=""):
        out.append((name, bool(ok), detail))

    cour = courier_settings(objs)
    side = sidecar_settings(objs)
    cc, sc = cour["container"], side["container"]
    if not (cc and sc):
        add("both Deployments exist (courier/courier, courier-sidecar/sidecar)", False)
        return out

    # Probes.
    ops = port_number(cc, "ops")
    add("courier declares the ops port 7433", ops == COURIER_OPS_PORT, f"ops = {ops}")
    add("courier liveness probe: GET /health on 7433",
        probe_target(cc, "livenessProbe") == ("/health", COURIER_OPS_PORT), str(probe_target(cc, "livenessProbe")))
    add("courier readiness probe: GET /ready on 7433",
        probe_target(cc, "readinessProbe") == ("/ready", COURIER_OPS_PORT), str(probe_target(cc, "readinessProbe")))
    ann = cour["dep"]["spec"]["template"]["metadata"].get("annotations") or {}
    add("courier pods carry Prometheus annotations for /metrics on 7433",
        ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(COURIER_OPS_PORT)
        and ann.get("prometheus.io/path") == "/metrics", str(ann))
    http = port_number(sc, "http")
    add("sidecar listens where its containerPort says (--port, --bind 0.0.0.0)",
        http == side["port"] == SIDECAR_PORT and side["bind"] in ("0.0.0.0", "::"),
        f"containerPort {http}, --port {side['port']}, --bind {side['bind']}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        add(f"sidecar {probe}: GET /v1/health on 8088",
            probe_target(sc, probe) == ("/v1/health", SIDECAR_PORT), str(probe_target(sc, probe)))

    # The Service courier posts to.
    svc = objs.get("Service", "courier-sidecar")
    url = cour["env"].get("COURIER_EXECUTOR_URL")
    ok = False
    detail = f"COURIER_EXECUTOR_URL {url}"
    if svc:
        sport = next((p for p in svc["spec"].get("ports", []) if p.get("port") == SIDECAR_PORT), None)
        labels = side["dep"]["spec"]["template"]["metadata"].get("labels") or {}
        sel = svc["spec"].get("selector") or {}
        ok = (sport is not None and port_number(sc, sport.get("targetPort", SIDECAR_PORT)) == SIDECAR_PORT
              and sel and all(labels.get(k) == v for k, v in sel.items())
              and url == f"http://{svc['metadata']['name']}:{SIDECAR_PORT}")
        detail += f", Service {svc['metadata']['name']} selector {sel}"
    add("courier's executor URL is the sidecar Service, which selects the sidecar pods on 8088", ok, detail)

    # Termination.
    grace = cour["dep"]["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    sleep, cmd = prestop_sleep(cc)
    need = sleep + cour["t"] + SHUTDOWN_EXIT_MARGIN
    add("courier terminationGracePeriodSeconds > preStop sleep + -t + 2 s",
        grace > need, f"{grace} <= {sleep:g} + {cour['t']:g} + {SHUTDOWN_EXIT_MARGIN}")
    add("courier preStop quiets PID 1 (kill -TSTP 1) before it sleeps",
        re.search(r"kill\s+-(TSTP|SIGTSTP|20)\s+1\s*;.*sleep", cmd) is not None
        and not cour["dep"]["spec"]["template"]["spec"].get("shareProcessNamespace"), cmd)
    sgrace = side["dep"]["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    ssleep, _ = prestop_sleep(sc)
    sneed = ssleep + (PUMA_WORKER_SHUTDOWN if side["workers"] > 1 else 0)
    add("sidecar terminationGracePeriodSeconds > preStop sleep + Puma's 30 s worker drain",
        sgrace > sneed, f"{sgrace} <= {sneed:g}")

    # One secret.
    refs = [cour["env"].get("COURIER_SECRET"), side["env"].get("COURIER_SECRET")]
    same = all(isinstance(r, tuple) for r in refs) and refs[0] == refs[1]
    add("both Deployments read COURIER_SECRET from the same Secret key", same, str(refs))
    example = objs.get("Secret", refs[0][1]) if same else None
    add("secret.example.yaml describes that Secret and key",
        example is not None and refs[0][2] in {**(example.get("stringData") or {}), **(example.get("data") or {})},
        str(refs[0]))

    # Capacity: every courier's -c has threads behind it.
    slots = side["threads"] * side["workers"]
    c_rep = cour["dep"]["spec"].get("replicas", 1)
    s_rep = side["dep"]["spec"].get("replicas", 1)
    add("courier -c x replicas <= sidecar threads x workers x replicas, and -c <= one pod's slots",
        cour["c"] * c_rep <= slots * s_rep and cour["c"] <= slots,
        f"{cour['c']} x {c_rep} vs {side['threads']} x {side['workers']} x {s_rep}")

    # Each Deployment: selector, PDB, security, resources.
    for dep, c in ((cour["dep"], cc), (side["dep"], sc)):
        name = dep["metadata"]["name"]
        labels = dep["spec"]["template"]["metadata"].get("labels") or {}
        sel = dep["spec"]["selector"].get("matchLabels") or {}
        add(f"{name}: selector matches its pod labels", sel and all(labels.get(k) == v for k, v in sel.items()))
        pdbs = [p for p in objs.all("PodDisruptionBudget")
                if (p["spec"].get("selector") or {}).get("matchLabels")
                and all(labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())]
        add(f"{name}: exactly one PodDisruptionBudget selects its pods", len(pdbs) == 1,
            f"{[p['metadata']['name'] for p in pdbs]}")
        pod_sc = dep["spec"]["template"]["spec"].get("securityContext") or {}
        c_sc = c.get("securityContext") or {}
        add(f"{name}: non-root, no privilege escalation, capabilities dropped",
            (pod_sc.get("runAsNonRoot") or c_sc.get("runAsNonRoot")) is True
            and c_sc.get("allowPrivilegeEscalation") is False
            and "ALL" in ((c_sc.get("capabilities") or {}).get("drop") or []), f"{pod_sc} {c_sc}")
        res = c.get("resources") or {}
        add(f"{name}: cpu and memory requests and limits set",
            all(k in (res.get(s) or {}) for s in ("requests", "limits") for k in ("cpu", "memory")), str(res))
    add("courier: readOnlyRootFilesystem", (cc.get("securityContext") or {}).get("readOnlyRootFilesystem") is True)

    # KEDA.
    sos = objs.all("ScaledObject")
    if sos:
        add("KEDA scales both Deployments", sorted(s["spec"]["scaleTargetRef"]["name"] for s in sos)
            == ["courier", "courier-sidecar"], str([s["spec"]["scaleTargetRef"]["name"] for s in sos]))
        redis_url = cour["env"].get("REDIS_URL")
        for so in sos:
            n = so["metadata"]["name"]
            ref = so["spec"]["scaleTargetRef"]
            target = objs.get(ref.get("kind", "Deployment"), ref["name"])
            add(f"ScaledObject {n}: scaleTargetRef names an existing Deployment",
                ref.get("kind", "Deployment") == "Deployment" and ref.get("apiVersion", "apps/v1") == "apps/v1"
                and target is not None, str(ref))
            container = objs.container(target, ref.get("envSourceContainerName")) if target else None
            add(f"ScaledObject {n}: envSourceContainerName is a container of it", container is not None,
                str(ref.get("envSourceContainerName")))
            env = objs.env(container) if container else {}
            for trig in so["spec"].get("triggers", []):
                md = trig.get("metadata") or {}
                if trig.get("type") != "redis":
                    continue
                var = md.get("addressFromEnv")
                addr = env.get(var) if var else md.get("address")
                add(f"ScaledObject {n}: the redis address ({var or 'address'}) is courier's REDIS_URL host:port",
                    isinstance(addr, str) and addr == redis_hostport(redis_url), f"{addr} vs {redis_url}")
                db = re.search(r"/(\d+)(?:\?|$)", redis_url or "")
                add(f"ScaledObject {n}: databaseIndex is REDIS_URL's database",
                    md.get("databaseIndex", "0") == (db.group(1) if db else "0"), md.get("databaseIndex", "0"))
                prefix = (cour["env"].get("COURIER_NAMESPACE") + ":") if cour["env"].get("COURIER_NAMESPACE") else ""
                add(f"ScaledObject {n}: listName {md.get('listName')} is a queue courier works",
                    md.get("listName") in [f"{prefix}queue:{q}" for q in cour["queues"]], str(cour["queues"]))
                auth = (trig.get("authenticationRef") or {}).get("name")
                ta = objs.get("TriggerAuthentication", auth) if auth else None
                secret_names = {r["name"] for r in ((ta or {}).get("spec") or {}).get("secretTargetRef", [])}
                add(f"ScaledObject {n}: authenticationRef names a TriggerAuthentication reading courier's Secret",
                    ta is not None and same and secret_names == {refs[0][1]}, f"{auth} -> {secret_names}")
        if len(sos) == 2:
            a, b = sos

            def shape(s):
                keep = {k: v for k, v in s["spec"].items() if k != "scaleTargetRef"}
                return json.dumps(keep, sort_keys=True)
            add("both ScaledObjects have the same triggers, bounds and behaviour (they scale together)",
                shape(a) == shape(b))
        so_c = next((s for s in sos if s["spec"]["scaleTargetRef"]["name"] == "courier"), None)
        add("courier's ScaledObject keeps at least one courier (scheduler, recovery)",
            so_c is not None and so_c["spec"].get("minReplicaCount", 0) >= 1)
    return out


def keda_schema_errors(doc):
    with open(os.path.join(SCHEMAS, KEDA_SCHEMAS[doc["kind"]])) as fh:
        schema = json.load(fh)
    v = jsonschema.Draft202012Validator(schema)
    return ["/".join(str(p) for p in e.absolute_path) + ": " + e.message for e in v.iter_errors(doc)]


def kubernetes_validate(docs, versions, label):
    """kubernetes-validate --strict on the built-in kinds of docs, one report per resource and version."""
    builtin = [d for _p, d in docs if not is_keda(d) and not is_kustomization(d)]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump_all(builtin, fh, sort_keys=False)
        tmp = fh.name
    names = {f"{d['kind'].lower()}/{d['metadata']['name']}": d for d in builtin}
    try:
        for version in versions:
            proc = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, tmp],
                                  capture_output=True, text=True, timeout=60)
            seen = set()
            for line in proc.stdout.splitlines():
                m = re.search(r"resource (\S+)", line)
                if not m:
                    continue
                seen.add(m.group(1))
                report(f"kubernetes-validate --strict {version} {label} {m.group(1)}",
                       line.startswith("INFO") and "passed" in line, line.replace(tmp, "").strip())
            for n in sorted(set(names) - seen):
                report(f"kubernetes-validate --strict {version} {label} {n}", False,
                       (proc.stdout + proc.stderr).strip()[-300:] or "no answer")
    finally:
        os.unlink(tmp)


def keda_validate(docs, label):
    for _p, d in docs:
        if is_keda(d):
            errs = keda_schema_errors(d) if d.get("kind") in KEDA_SCHEMAS else [f"no schema for {d.get('kind')}"]
            report(f"KEDA schema {label} {d['kind'].lower()}/{d['metadata']['name']}", not errs, "; ".join(errs))


def kustomize_checks(docs):
    kusts = [(p, d) for p, d in docs if is_kustomization(d)]
    listed = set()
    for path, k in kusts:
        base = os.path.dirname(path)
        missing = []
        for r in k.get("resources", []):
            full = os.path.normpath(os.path.join(base, r))
            if os.path.isdir(full):
                full = os.path.join(full, "kustomization.yaml")
            if not os.path.exists(full):
                missing.append(r)
            listed.add(full)
        report(f"{rel(path)}: every listed resource exists", not missing, str(missing))
    manifests = {p for p, d in docs if not is_kustomization(d)}
    example = {p for p in manifests if os.path.basename(p).startswith("secret.example")}
    unlisted = sorted(rel(p) for p in manifests - example - listed)
    report("every manifest is listed in a kustomization", not unlisted, str(unlisted))
    report("secret.example.yaml is not applied by any kustomization (never overwrites the real Secret)",
           example and not (example & listed), str(sorted(rel(p) for p in example)))


def render(directory):
    proc = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return None, proc.stderr.strip()[-400:]
    return [(directory, d) for d in yaml.safe_load_all(proc.stdout) if d], ""


# ---------------------------------------------------------------- self-test

def mutations():
    """(what, edit(docs) -> None, how it must be caught: 'keda' (schema), 'kubernetes'
    (kubernetes-validate), or the name (part) of the agreement check that must fail)."""
    def dep(docs, name):
        return next(d for _p, d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] == name)

    def so(docs, name):
        return next(d for _p, d in docs if d.get("kind") == "ScaledObject" and d["metadata"]["name"] == name)

    def cont(d):
        return d["spec"]["template"]["spec"]["containers"][0]

    return [
        ("courier grace period 20 s < preStop + -t",
         lambda docs: dep(docs, "courier")["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=20),
         "courier terminationGracePeriodSeconds"),
        ("courier liveness probe on port 8080",
         lambda docs: cont(dep(docs, "courier"))["livenessProbe"]["httpGet"].update(port=8080),
         "courier liveness probe"),
        ("sidecar readiness probe on /health",
         lambda docs: cont(dep(docs, "courier-sidecar"))["readinessProbe"]["httpGet"].update(path="/health"),
         "sidecar readinessProbe"),
        ("sidecar COURIER_SECRET from another Secret",
         lambda docs: next(e for e in cont(dep(docs, "courier-sidecar"))["env"] if e["name"] == "COURIER_SECRET")
         ["valueFrom"]["secretKeyRef"].update(name="other-secret"), "COURIER_SECRET from the same Secret"),
        ("KEDA target misspelt (courir)",
         lambda docs: so(docs, "courier")["spec"]["scaleTargetRef"].update(name="courir"),
         "scaleTargetRef names an existing Deployment"),
        ("KEDA listName of a queue courier does not work",
         lambda docs: so(docs, "courier")["spec"]["triggers"][0]["metadata"].update(listName="queue:mailers"),
         "is a queue courier works"),
        ("KEDA listLength as a number, not a string",
         lambda docs: so(docs, "courier-sidecar")["spec"]["triggers"][0]["metadata"].update(listLength=20), "keda"),
        ("KEDA spec.minReplicas (HPA's name, not KEDA's)",
         lambda docs: so(docs, "courier")["spec"].update(minReplicas=1), "keda"),
        ("Deployment spec.template.spec.terminationGracePeriodSecond (typo)",
         lambda docs: dep(docs, "courier")["spec"]["template"]["spec"].update(terminationGracePeriodSecond=40),
         "kubernetes"),
    ]


def caught(docs, how):
    if how not in ("keda", "kubernetes"):
        return any(how in n and not ok for n, ok, _d in semantic_checks(Objects(docs)))
    if how == "keda":
        return any(keda_schema_errors(d) for _p, d in docs if is_keda(d))
    builtin = [d for _p, d in docs if not is_keda(d) and not is_kustomization(d)]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump_all(builtin, fh, sort_keys=False)
        tmp = fh.name
    try:
        proc = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", OLDEST, tmp],
                              capture_output=True, text=True, timeout=60)
        return proc.returncode != 0 and "ERROR" in proc.stdout
    finally:
        os.unlink(tmp)


# ---------------------------------------------------------------- main

def main():
    global skipped
    import kubernetes_validate.utils as kv
    versions = [OLDEST] + ([kv.latest_version()] if kv.latest_version() != OLDEST else [])

    for f in sorted(KEDA_SCHEMAS.values()):
        try:
            with open(os.path.join(SCHEMAS, f)) as fh:
                jsonschema.Draft202012Validator.check_schema(json.load(fh))
            report(f"schema {f} is a valid JSON Schema (2020-12)", True)
        except Exception as e:  # noqa: BLE001 - any problem with the file is a failure
            report(f"schema {f} is a valid JSON Schema (2020-12)", False, str(e)[:300])

    try:
        docs = load_tree()
    except yaml.YAMLError as e:
        report("deploy/kubernetes parses as YAML", False, str(e)[:300])
        return
    report(f"deploy/kubernetes parses as YAML ({len(docs)} documents)", bool(docs))
    bad = [rel(p) for p, d in docs if not (d.get("apiVersion") and d.get("kind") and
                                           (is_kustomization(d) or (d.get("metadata") or {}).get("name")))]
    report("every document has apiVersion, kind and metadata.name", not bad, str(bad))

    kubernetes_validate(docs, versions, "file")
    keda_validate(docs, "file")
    kustomize_checks(docs)
    objs = Objects(docs)
    for name, ok, detail in semantic_checks(objs):
        report(name, ok, detail)

    if shutil.which("kubectl"):
        for sub, want_keda in (("", False), ("keda", True)):
            directory = os.path.join(K8S, sub) if sub else K8S
            label = "rendered " + rel(directory)
            rendered, err = render(directory)
            report(f"kubectl kustomize {rel(directory)}", rendered is not None, err)
            if rendered is None:
                continue
            kinds = sorted(d["kind"] for _p, d in rendered)
            report(f"{label}: ScaledObjects present only in the KEDA overlay",
                   ("ScaledObject" in kinds) == want_keda and "Secret" not in kinds, str(kinds))
            deps = [d for _p, d in rendered if d["kind"] == "Deployment"]
            report(f"{label}: images set by the kustomization",
                   all(":" in c["image"] and "/" in c["image"]
                       for d in deps for c in d["spec"]["template"]["spec"]["containers"]))
            report(f"{label}: Deployments {'leave replicas to KEDA' if want_keda else 'set replicas'}",
                   all(("replicas" in d["spec"]) != want_keda for d in deps))
            kubernetes_validate(rendered, [OLDEST], label)
            keda_validate(rendered, label)
            if want_keda:
                bad = [n for n, ok, _d in semantic_checks(Objects(docs_with_secret(rendered, docs))) if not ok]
                report(f"{label}: the agreement checks hold after rendering", not bad, "; ".join(bad))
    else:
        skipped += 1
        print("skip  kubectl kustomize renderings (no kubectl on PATH)")

    for what, edit, how in mutations():
        broken = copy.deepcopy(docs)
        try:
            edit(broken)
            ok = caught(broken, how)
        except (StopIteration, KeyError, IndexError) as e:
            ok, what = False, f"{what} (could not apply: {e!r})"
        report(f"self-test: caught {what}", ok)


def docs_with_secret(rendered, docs):
    """The rendering plus the Secret (created by hand, so never rendered)."""
    return list(rendered) + [(p, d) for p, d in docs if d.get("kind") == "Secret"]


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report, count, and fail
        import traceback
        traceback.print_exc()
        report("check.py ran to the end", False, repr(e))
    tail = f", {skipped} skipped" if skipped else ""
    print(f"k8s: {passed} passed, {failed} failed{tail}")
    sys.exit(1 if failed else 0)
