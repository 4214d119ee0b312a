#!/usr/bin/env python3
"""Validates the Kubernetes manifests of a weft deployment offline (what
`weft launch ARTIFACT --k8s` prints): every document of a multi-document
YAML file, strictly (an unknown field is an error, as with kubectl's
default --validate=strict):

- LeaderWorkerSet (leaderworkerset.x-k8s.io/v1) against the CRD's
  openAPIV3Schema (LeaderWorkerSet v0.10.0), its metadata against
  Kubernetes' ObjectMeta, and its leaderTemplate and workerTemplate also
  against Kubernetes 1.30's core/v1 PodTemplateSpec;
- Service (v1) against Kubernetes 1.30's core/v1 Service;
- any other kind is an error.

Then what a schema cannot say and the deployment needs: the group's
restart and startup policies, the leader's address, port and probes, the
Service's name and selector against the labels LeaderWorkerSet gives leader
and worker pods, read-only model mounts, /dev/shm, extended resources
(nvidia.com/gpu, rdma/...) requested equal to their limits, GPUs equal to
--nproc, $(VAR) references, names. test/fixtures/k8s/README.md says where
the schemas come from.

  check_k8s.py [--schemas DIR] FILE      (FILE - reads standard input)

Prints `ok KIND NAME` for a valid document, else one
`error: KIND NAME: PATH: MESSAGE` line per error (PATH as
spec.containers[0].name). Exit 1 on any error, 2 on a usage error.
"""
import argparse
import copy
import json
import os
import re
import sys

import yaml

try:
    import jsonschema
except ImportError:
    sys.exit("check_k8s.py: needs the jsonschema package (scripts/setup "
             "installs it into .venv)")

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "fixtures", "k8s")
CRD_FILE = "leaderworkerset.x-k8s.io_leaderworkersets.yaml"
K8S_FILE = "kubernetes-v1.30-strict.json"
CRD_NAME = "LWS v0.10.0 CRD"
K8S_NAME = "Kubernetes 1.30"

LWS_API = "leaderworkerset.x-k8s.io/v1"
# Labels and environment variables LeaderWorkerSet sets
# (api/leaderworkerset/v1/leaderworkerset_types.go; the leader statefulset's
# pod template and the pod webhook set the labels, AddLWSVariables the
# variables, in every container and init container).
L_NAME = "leaderworkerset.sigs.k8s.io/name"
L_WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"
L_PER_GROUP = ["leaderworkerset.sigs.k8s.io/group-index",
               "leaderworkerset.sigs.k8s.io/group-key",
               "leaderworkerset.sigs.k8s.io/template-revision-hash",
               "leaderworkerset.sigs.k8s.io/subgroup-index",
               "leaderworkerset.sigs.k8s.io/subgroup-key"]
LWS_ENV = ["LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE", "LWS_WORKER_INDEX"]
GPU = "nvidia.com/gpu"
# weft serve's defaults (docs/serving.md).
SERVE_PORT = 8000
SHUTDOWN_GRACE = 30
POD_GRACE = 30  # Kubernetes' terminationGracePeriodSeconds default

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


# --- loading ---------------------------------------------------------------

class StrictLoader(yaml.SafeLoader):
    """Refuses a mapping with a repeated key, as the API server's strict
    decoding does ("duplicate field")."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: dict(_mapping(loader, node, deep=True)))


def list_type(validator, kind, instance, schema):
    """x-kubernetes-list-type: entries of a `set` are unique, entries of a
    `map` unique by x-kubernetes-list-map-keys (as the API server checks)."""
    if not validator.is_type(instance, "array"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", [])
    seen = {}
    for i, item in enumerate(instance):
        if kind == "set":
            key = json.dumps(item, sort_keys=True)
        elif kind == "map" and isinstance(item, dict) and keys:
            key = tuple(json.dumps(item.get(k)) for k in keys)
        else:
            continue
        if key in seen:
            what = (", ".join(f"{k}={item.get(k)}" for k in keys)
                    if kind == "map" else json.dumps(item))
            yield jsonschema.ValidationError(
                f"duplicate entry ({what}), also at [{seen[key]}]", path=[i])
        else:
            seen[key] = i


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-kubernetes-list-type": list_type})


def strict(schema):
    """The CRD schema with every object that lists its properties closed
    (additionalProperties: false), as strict field validation treats a
    structural schema; x-kubernetes-preserve-unknown-fields stays open."""
    if not isinstance(schema, dict):
        return schema
    s = dict(schema)
    if "properties" in s:
        s["properties"] = {k: strict(v) for k, v in s["properties"].items()}
        if ("additionalProperties" not in s
                and not s.get("x-kubernetes-preserve-unknown-fields")):
            s["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(s.get(key), dict):
            s[key] = strict(s[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in s:
            s[key] = [strict(x) for x in s[key]]
    return s


class Schemas:
    def __init__(self, folder):
        with open(os.path.join(folder, CRD_FILE)) as f:
            crd = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        lws = strict(copy.deepcopy(versions["v1"]["schema"]["openAPIV3Schema"]))
        with open(os.path.join(folder, K8S_FILE)) as f:
            defs = json.load(f)["$defs"]

        def ref(name):
            return Validator({"$defs": defs, "$ref": "#/$defs/" + name})
        self.lws = Validator(lws)
        self.pod_template = ref("io.k8s.api.core.v1.PodTemplateSpec")
        self.service = ref("io.k8s.api.core.v1.Service")
        self.object_meta = ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")


# --- reporting -------------------------------------------------------------

def fmt_path(parts):
    """kubectl's form: spec.containers[0].name, a map key that is not a
    plain word in brackets (metadata.labels[app.kubernetes.io/name])."""
    out = ""
    for p in parts:
        if isinstance(p, int) or not re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", str(p)):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out or "(document)"


class Doc:
    def __init__(self, index, obj):
        self.index, self.obj = index, obj
        self.errors = []   # [(path, message, [schema names])]
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        self.kind = obj.get("kind") if isinstance(obj, dict) else None
        self.name = meta.get("name")
        self.namespace = meta.get("namespace")
        self.schema_ok = True

    def label(self):
        kind = self.kind if isinstance(self.kind, str) else f"document {self.index}"
        return f"{kind} {self.name if isinstance(self.name, str) else '(unnamed)'}"

    def error(self, path, message, source=None):
        path = path if isinstance(path, str) else fmt_path(path)
        for e in self.errors:
            if e[0] == path and e[1] == message:
                if source and source not in e[2]:
                    e[2].append(source)
                return
        self.errors.append((path, message, [source] if source else []))

    def schema_errors(self, validator, instance, prefix, source):
        for e in validator.iter_errors(instance):
            self.schema_ok = False
            path = list(prefix) + list(e.absolute_path)
            if e.validator == "additionalProperties" and e.validator_value is False:
                known = set(e.schema.get("properties", {}))
                for extra in sorted(k for k in e.instance if k not in known):
                    self.error(path + [extra], f'unknown field "{extra}"', source)
            elif e.validator == "required":
                missing = re.match(r"'(.*)' is a required property", e.message)
                field = missing.group(1) if missing else e.message
                self.error(path, f'missing required field "{field}"', source)
            else:
                msg = e.message if len(e.message) <= 200 else e.message[:197] + "..."
                self.error(path, msg, source)

    def report(self):
        if not self.errors:
            print(f"ok {self.label()}")
            return 0
        for path, msg, sources in self.errors:
            tail = f" ({', '.join(sources)})" if sources else ""
            print(f"error: {self.label()}: {path}: {msg}{tail}")
        return len(self.errors)


# --- helpers ---------------------------------------------------------------

def quantity(v):
    """A resource quantity as a number (plain and binary/decimal suffixes);
    None when not one."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?", str(v))
    if not m:
        return None
    scale = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
             "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}[m.group(2)]
    try:
        return float(m.group(1)) * scale
    except ValueError:
        return None


def argv_of(c):
    return [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]


def serve_args(c):
    """weft serve's arguments when the container runs it, else None."""
    argv = argv_of(c)
    for i in range(len(argv) - 1):
        if os.path.basename(argv[i]) == "weft" and argv[i + 1] == "serve":
            return argv[i + 2:]
    return None


def option(args, name):
    """(index, value) of the last --name VALUE or --name=VALUE."""
    found = None
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            found = (i + 1, args[i + 1])
        elif a.startswith(name + "="):
            found = (i, a[len(name) + 1:])
    return found


def positional(args):
    i = 0
    while i < len(args):
        if args[i].startswith("--"):
            i += 1 if "=" in args[i] else 2
            continue
        return args[i]
    return None


def as_int(v):
    try:
        return int(str(v))
    except ValueError:
        return None


def containers(spec):
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            yield key, i, c


# --- LeaderWorkerSet --------------------------------------------------------

def check_lws(doc, s):
    o = doc.obj
    doc.schema_errors(s.lws, o, [], CRD_NAME)
    if isinstance(o.get("metadata"), dict):
        doc.schema_errors(s.object_meta, o["metadata"], ["metadata"], K8S_NAME)
    lwt = ((o.get("spec") or {}).get("leaderWorkerTemplate") or {})
    base = ["spec", "leaderWorkerTemplate"]
    for key in ("leaderTemplate", "workerTemplate"):
        if isinstance(lwt.get(key), dict):
            doc.schema_errors(s.pod_template, lwt[key], base + [key],
                              K8S_NAME + " PodTemplateSpec")
    if not doc.schema_ok:
        return
    spec = o["spec"]
    check_name(doc, ["metadata", "name"], doc.name, "LeaderWorkerSet")
    if lwt.get("restartPolicy") != "RecreateGroupOnPodRestart":
        got = lwt.get("restartPolicy")
        doc.error(base + ["restartPolicy"],
                  ("missing; " if got is None else f"is {got}; ") +
                  "set RecreateGroupOnPodRestart: when one rank fails, weft "
                  "serve exits and the group's ranks must restart together")
    if spec.get("startupPolicy") != "LeaderCreated":
        got = spec.get("startupPolicy")
        doc.error(["spec", "startupPolicy"],
                  ("missing; set LeaderCreated (the default) explicitly"
                   if got is None else f"is {got}; use LeaderCreated") +
                  ": the leader's /health answers 503 until every rank is up, "
                  "so LeaderReady would never create the workers")
    size = lwt.get("size", 1)
    leader = lwt.get("leaderTemplate")
    if leader is None:
        doc.error(base + ["leaderTemplate"], "missing: the leader serves HTTP "
                  "and needs its own port and probes")
    templates = [("leaderTemplate", leader), ("workerTemplate", lwt["workerTemplate"])]
    seen = {}
    for key, t in templates:
        if t is not None:
            check_template(doc, base + [key], t, key == "leaderTemplate", size, seen)
    if len(seen.get("image", {})) > 1:
        doc.error(base, "the leader and the workers run different images "
                  f"({', '.join(sorted(seen['image']))}): every rank must run "
                  "the same weft")
    if len(seen.get("gpu", {})) > 1:
        doc.error(base, f"the leader and the workers request different {GPU} "
                  f"({', '.join(sorted(seen['gpu']))}): every node runs the "
                  "same --nproc ranks")


def check_template(doc, path, t, is_leader, size, seen):
    spec = t.get("spec") or {}
    sp = path + ["spec"]
    if spec.get("restartPolicy", "Always") != "Always":
        doc.error(sp + ["restartPolicy"], f"is {spec['restartPolicy']}; "
                  "LeaderWorkerSet's StatefulSets accept only Always")
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    model_volumes = {n for n, v in volumes.items() if "persistentVolumeClaim" in v}
    served = None
    for key, i, c in containers(spec):
        cp = sp + [key, i]
        if not DNS1123.match(str(c.get("name", ""))) or len(c["name"]) > 63:
            doc.error(cp + ["name"], f"{c.get('name')!r} is not a DNS-1123 label")
        check_resources(doc, cp, c)
        args = serve_args(c)
        if args is None:
            continue
        seen.setdefault("image", set()).add(str(c.get("image")))
        artifact = positional(args)
        mounts = c.get("volumeMounts") or []
        best = None
        for m in mounts:
            mp = m.get("mountPath", "").rstrip("/")
            if artifact and (artifact == mp or artifact.startswith(mp + "/")):
                if best is None or len(mp) > len(best.get("mountPath", "")):
                    best = m
        if artifact is None:
            doc.error(cp + ["command"], "weft serve has no artifact argument")
        elif best is None:
            doc.error(cp + ["volumeMounts"], f"the artifact {artifact} is on "
                      "no volume mount")
        else:
            model_volumes.add(best.get("name"))
        check_serve(doc, cp, c, args, size, seen)
        if is_leader and served is None:
            served = (cp, c, args)
    for name in sorted(n for n in model_volumes if n in volumes):
        pvc = volumes[name].get("persistentVolumeClaim")
        if pvc is not None and pvc.get("readOnly") is not True:
            idx = [v.get("name") for v in spec["volumes"]].index(name)
            doc.error(sp + ["volumes", idx, "persistentVolumeClaim", "readOnly"],
                      f'the model volume "{name}" must be claimed readOnly: true')
    for key, i, c in containers(spec):
        for j, m in enumerate(c.get("volumeMounts") or []):
            if m.get("name") in model_volumes and m.get("readOnly") is not True:
                doc.error(sp + [key, i, "volumeMounts", j], "mounts the model "
                          f'volume "{m["name"]}" writable; set readOnly: true')
            if m.get("name") not in volumes:
                doc.error(sp + [key, i, "volumeMounts", j, "name"],
                          f'no volume "{m.get("name")}" in the pod')
    if is_leader:
        if served is None:
            doc.error(sp + ["containers"], "no container runs weft serve")
        else:
            check_leader(doc, sp, spec, *served)


def check_resources(doc, cp, c):
    """Extended resources (a domain-prefixed name: nvidia.com/gpu, rdma/ib)
    need a limit, and a request equal to it: Kubernetes does not overcommit
    them and refuses the pod otherwise."""
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    for r in sorted(set(req) | set(lim)):
        if "/" not in r or r.startswith("kubernetes.io/"):
            continue
        rp = cp + ["resources"]
        if r not in lim:
            doc.error(rp + ["limits"], f"{r} is requested but has no limit "
                      "(an extended resource needs limits equal to requests)")
        elif r in req and quantity(req[r]) != quantity(lim[r]):
            doc.error(rp + ["requests", r], f"{req[r]} is not the limit "
                      f"{lim[r]}: extended resources cannot be overcommitted")


def check_serve(doc, cp, c, args, size, seen):
    env = c.get("env") or []
    names = {e.get("name") for e in env}
    for j, e in enumerate(env):
        if e.get("name") in LWS_ENV:
            doc.error(cp + ["env", j, "name"], f"{e['name']} is set by "
                      "LeaderWorkerSet, which overrides this one")
    if not c.get("envFrom"):
        fields = [("command", c.get("command") or []), ("args", c.get("args") or [])]
        fields += [(f"env[{j}].value", [e["value"]]) for j, e in enumerate(env)
                   if isinstance(e.get("value"), str)]
        for field, values in fields:
            for k, v in enumerate(values):
                for var in VAR_REF.findall(str(v).replace("$$", "")):
                    if var not in names and var not in LWS_ENV:
                        where = field if field.startswith("env") else f"{field}[{k}]"
                        doc.error(fmt_path(cp) + "." + where, f"$({var}) is "
                                  "not set in the container (env, or "
                                  f"LeaderWorkerSet's {', '.join(LWS_ENV)}): "
                                  "the kubelet passes it on as written")
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    gpus = lim.get(GPU, req.get(GPU))
    if gpus is not None:
        seen.setdefault("gpu", set()).add(str(gpus))
        nproc = option(args, "--nproc")
        if nproc is None or as_int(nproc[1]) != quantity(gpus):
            doc.error(cp + ["resources", "limits", GPU], f"{gpus} GPUs but "
                      f"weft serve --nproc {nproc[1] if nproc else '(absent)'}: "
                      "one rank a GPU")
        backend = option(args, "--backend")
        if backend is None or backend[1] != "cuda":
            doc.error(cp + ["command"], f"requests {GPU} but weft serve runs "
                      "on the CPU backend unless given --backend cuda")
        shm = [m for m in c.get("volumeMounts") or []
               if m.get("mountPath", "").rstrip("/") == "/dev/shm"]
        if not shm:
            doc.error(cp + ["volumeMounts"], "no emptyDir (medium: Memory) at "
                      "/dev/shm: NCCL's shared-memory transport needs more "
                      "than the runtime's 64 MiB")
    rdma = [r for r in lim if r.startswith("rdma/")]
    caps = (((c.get("securityContext") or {}).get("capabilities") or {})
            .get("add") or [])
    if rdma and "IPC_LOCK" not in caps:
        doc.error(cp + ["securityContext"], f"requests {rdma[0]} without "
                  "capabilities.add IPC_LOCK: RDMA memory registration pins "
                  "memory past the default memlock limit")
    nnodes = option(args, "--nnodes")
    if nnodes and as_int(nnodes[1]) is not None and as_int(nnodes[1]) != size:
        doc.error(cp + ["command"], f"--nnodes {nnodes[1]} but "
                  f"leaderWorkerTemplate.size {size}; pass $(LWS_GROUP_SIZE)")


def check_leader(doc, sp, spec, cp, c, args):
    port = option(args, "--port")
    port = as_int(port[1]) if port else SERVE_PORT
    host = option(args, "--host")
    if host is None or host[1] not in ("0.0.0.0", "::", "[::]"):
        doc.error(cp + ["command"], "weft serve listens on "
                  f"{host[1] if host else '127.0.0.1 (the default)'}: the "
                  "Service and the kubelet's probes reach the pod's IP; pass "
                  "--host 0.0.0.0")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if port not in ports.values():
        doc.error(cp + ["ports"], f"no containerPort {port} (weft serve --port)")

    def on_port(p):
        v = p.get("port")
        return v == port or (isinstance(v, str) and ports.get(v) == port)
    probe = c.get("readinessProbe") or {}
    get = probe.get("httpGet")
    if not get or get.get("path") != "/health" or not on_port(get):
        doc.error(cp + ["readinessProbe"], "must be httpGet /health on the "
                  f"serving port {port}")
    live = (c.get("livenessProbe") or {}).get("httpGet")
    if live and live.get("path") == "/health" and not c.get("startupProbe"):
        doc.error(cp + ["livenessProbe"], "on /health without a startupProbe: "
                  "/health answers 503 while the model loads, so the kubelet "
                  "would restart the container (and the group) before it is "
                  "ready")
    grace = option(args, "--shutdown-grace")
    grace = as_int(grace[1]) if grace else SHUTDOWN_GRACE
    pod_grace = spec.get("terminationGracePeriodSeconds", POD_GRACE)
    if grace is not None and pod_grace <= grace:
        doc.error(sp + ["terminationGracePeriodSeconds"], f"{pod_grace}"
                  f"{' (the default)' if 'terminationGracePeriodSeconds' not in spec else ''}"
                  f" is not above weft serve's --shutdown-grace {grace}: the "
                  "kubelet would kill the server before the requests in "
                  "flight end")
    doc.serving = (port, ports)


# --- Service ----------------------------------------------------------------

def check_service(doc, s):
    doc.schema_errors(s.service, doc.obj, [], K8S_NAME)
    if not doc.schema_ok:
        return
    check_name(doc, ["metadata", "name"], doc.name, "Service")
    spec = doc.obj.get("spec") or {}
    if spec.get("type", "ClusterIP") != "ClusterIP":
        doc.error(["spec", "type"], f"is {spec['type']}; weft's Service is "
                  "ClusterIP")


def check_service_against(doc, lws_docs):
    spec = doc.obj.get("spec") or {}
    sel = spec.get("selector") or {}
    for l in lws_docs:
        if doc.name == l.name:
            doc.error(["metadata", "name"], f"{doc.name} is the name of the "
                      "headless Service that LeaderWorkerSet creates for its "
                      "pods' DNS names (LWS_LEADER_ADDRESS); name this one "
                      "otherwise")
    if not sel:
        doc.error(["spec", "selector"], "missing: the Service would select "
                  "no pods")
        return
    for k in sel:
        if k in L_PER_GROUP:
            doc.error(["spec", "selector", k], "differs between groups and "
                      "revisions: the Service would miss the leaders of the "
                      "other groups")
    matched = None
    for l in lws_docs:
        lwt = l.obj["spec"]["leaderWorkerTemplate"]
        leader = lwt.get("leaderTemplate") or lwt["workerTemplate"]
        labels = dict((leader.get("metadata") or {}).get("labels") or {})
        labels.update({L_NAME: l.name, L_WORKER_INDEX: "0"})
        if all(labels.get(k) == v for k, v in sel.items()):
            matched = l
            break
    if matched is None:
        doc.error(["spec", "selector"], f"{json.dumps(sel, sort_keys=True)} "
                  "matches the leader pods of no LeaderWorkerSet here (they "
                  f"carry {L_NAME}: NAME and {L_WORKER_INDEX}: \"0\")")
        return
    l = matched
    if doc.namespace != l.namespace:
        doc.error(["metadata", "namespace"], f"{doc.namespace} but the "
                  f"LeaderWorkerSet {l.name} is in {l.namespace}")
    lwt = l.obj["spec"]["leaderWorkerTemplate"]
    size = lwt.get("size", 1)
    worker = dict((lwt["workerTemplate"].get("metadata") or {}).get("labels") or {})
    worker[L_NAME] = l.name

    def selects_worker(k, v):
        if k == L_WORKER_INDEX:
            return as_int(v) is not None and 0 < as_int(v) < size
        return worker.get(k) == v
    if size > 1 and all(selects_worker(k, v) for k, v in sel.items()):
        doc.error(["spec", "selector"], "also selects the worker pods, which "
                  f"do not serve HTTP; add {L_WORKER_INDEX}: \"0\"")
    serving = getattr(l, "serving", None)
    if serving is None:
        return
    port, names = serving
    for i, p in enumerate(spec.get("ports") or []):
        t = p.get("targetPort", p.get("port"))
        if not (t == port or (isinstance(t, str) and names.get(t) == port)):
            doc.error(["spec", "ports", i, "targetPort" if "targetPort" in p
                       else "port"], f"{t} is not the leader's serving port "
                      f"{port}")


def check_name(doc, path, name, kind):
    if not isinstance(name, str) or not DNS1035.match(name) or len(name) > 63:
        doc.error(path, f"{name!r} is not a DNS-1035 label (lower-case "
                  f"letters, digits and '-', a letter first, 63 at most), as "
                  f"a {kind} name must be")


# --- main ---------------------------------------------------------------------

KINDS = {(LWS_API, "LeaderWorkerSet"): check_lws, ("v1", "Service"): check_service}


def main():
    ap = argparse.ArgumentParser(description="Validates weft's Kubernetes "
                                 "manifests offline.")
    ap.add_argument("file", help="multi-document YAML, - for standard input")
    ap.add_argument("--schemas", default=SCHEMAS, help="folder of the schemas "
                    "(default: test/fixtures/k8s)")
    a = ap.parse_args()
    try:
        text = sys.stdin.read() if a.file == "-" else open(a.file).read()
        objs = [o for o in yaml.load_all(text, Loader=StrictLoader) if o is not None]
    except (OSError, yaml.YAMLError) as e:
        print(f"error: {a.file}: {' '.join(str(e).split())}")
        return 1
    if not objs:
        print(f"error: {a.file}: no documents")
        return 1
    s = Schemas(a.schemas)
    docs = [Doc(i, o) for i, o in enumerate(objs)]
    for d in docs:
        if not isinstance(d.obj, dict):
            d.error([], "not a mapping")
            continue
        check = KINDS.get((d.obj.get("apiVersion"), d.kind))
        if check is None:
            d.schema_ok = False
            d.error([], f"unknown kind {d.kind} (apiVersion "
                    f"{d.obj.get('apiVersion')}): only LeaderWorkerSet "
                    f"({LWS_API}) and Service (v1) are known")
            continue
        check(d, s)
    # The Services against the LeaderWorkerSets, once all are valid.
    if all(d.schema_ok for d in docs):
        lws = [d for d in docs if d.kind == "LeaderWorkerSet"]
        for d in docs:
            if d.kind == "Service":
                check_service_against(d, lws)
    errors = sum(d.report() for d in docs)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
