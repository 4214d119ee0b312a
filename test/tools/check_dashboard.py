#!/usr/bin/env python3
"""Checks a Grafana dashboard (deploy/grafana/weft.json) against the metrics
weft serves: the file is JSON of Grafana 10's model (schemaVersion 38 or
later), with a ${DS_PROMETHEUS} data source input that every query uses, a
`rank` template variable, unique panel ids, at least one query a panel, and
every metric name of every PromQL expression (panels and variables) among
the names in the tables of docs/serving.md's "## Metrics" section (a
histogram's _bucket, _sum and _count series included).

  check_dashboard.py DASHBOARD_JSON SERVING_MD

Prints `ok PANEL_ID TITLE: METRIC...` for each panel with queries and a last
`ok dashboard: N panels, M queries, K metrics`, else one `error: ...` line
each (exit 1).
"""
import json
import re
import sys

DS = "${DS_PROMETHEUS}"
# Label lists (by (...), on (...), group_left (...)) hold label names, not
# metrics.
LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "and", "or", "unless", "atan2", "inf", "nan",
            "Inf", "NaN", "start", "end"}
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def documented_metrics(path):
    """{name: type} from the tables under docs/serving.md's "## Metrics"
    heading: rows whose first cell is a `name{labels}` in backticks."""
    names, inside = {}, False
    with open(path) as f:
        for line in f:
            if line.startswith("## "):
                inside = line.strip() == "## Metrics"
                continue
            m = re.match(r"\|\s*`([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?`\s*\|\s*(\w+)\s*\|", line)
            if inside and m:
                names[m.group(1)] = m.group(3)
    return names


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    e = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^{}]*\}", " ", e)          # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)        # ranges, subqueries
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)   # Grafana variables
    e = re.sub(r"\boffset\s+-?[0-9A-Za-z]+|@\s*(start|end)\s*\(\s*\)|@\s*[0-9.]+",
               " ", e)                        # offset and @ modifiers
    e = LABEL_LIST.sub(" ", e)
    e = re.sub(r"(?<![A-Za-z0-9_:])[0-9][0-9.]*([eE][+-]?[0-9]+)?", " ", e)
    out = []
    for m in IDENT.finditer(e):
        word = m.group(0)
        if word in KEYWORDS or re.match(r"\s*\(", e[m.end():]):
            continue  # a keyword, or a function or aggregation
        out.append(word)
    return out


def known(name, metrics):
    """None when the documented metrics have the series, else why not."""
    if metrics.get(name) == "histogram":
        return (f"{name} is a histogram: its series are {name}_bucket, "
                "_sum and _count")
    if name in metrics:
        return None
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    if base != name and metrics.get(base) == "histogram":
        return None
    return f"metric {name} is not in {sys.argv[2]}'s metric tables"


def panels_of(items):
    for p in items:
        yield p
        yield from panels_of(p.get("panels") or [])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    errors = []
    try:
        with open(sys.argv[1]) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: {sys.argv[1]}: not JSON: {e}")
        return 1
    metrics = documented_metrics(sys.argv[2])
    if not metrics:
        print(f"error: {sys.argv[2]}: no metric table under '## Metrics'")
        return 1
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 38:
        errors.append(f"schemaVersion {d.get('schemaVersion')}: Grafana 10 "
                      "writes 38 or later")
    inputs = [i.get("name") for i in d.get("__inputs") or []
              if i.get("type") == "datasource" and i.get("pluginId") == "prometheus"]
    if "DS_PROMETHEUS" not in inputs:
        errors.append("no __inputs entry DS_PROMETHEUS (a prometheus datasource)")
    variables = {v.get("name"): v for v in (d.get("templating") or {}).get("list") or []}
    if "rank" not in variables:
        errors.append("no template variable rank")

    used, queries, seen_ids = set(), 0, {}

    def check_expr(where, expr):
        names = metric_names(expr)
        if not names:
            errors.append(f"{where}: no metric in {expr!r}")
        for n in names:
            why = known(n, metrics)
            if why:
                errors.append(f"{where}: {why}")
        used.update(names)
        return names

    for name, v in variables.items():
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") != "query" or not isinstance(q, str):
            continue
        m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*", q)
        check_expr(f"variable {name}", m.group(1) if m else q)
        if (v.get("datasource") or {}).get("uid") != DS:
            errors.append(f"variable {name}: datasource is not {DS}")

    panels = list(panels_of(d.get("panels") or []))
    if not panels:
        errors.append("no panels")
    lines = []
    for p in panels:
        pid, title = p.get("id"), p.get("title", "")
        where = f"panel {pid} {title!r}"
        if not isinstance(pid, int):
            errors.append(f"{where}: no integer id")
        elif pid in seen_ids:
            errors.append(f"{where}: id {pid} also names panel {seen_ids[pid]!r}")
        else:
            seen_ids[pid] = title
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24:
            errors.append(f"{where}: gridPos {g} is not within the 24 columns")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"{where}: no queries")
        names = []
        for t in targets:
            ds = (t.get("datasource") or p.get("datasource") or {}).get("uid")
            if ds != DS:
                errors.append(f"{where}: query {t.get('refId')}: datasource "
                              f"{ds} is not {DS}")
            if not isinstance(t.get("expr"), str) or not t["expr"].strip():
                errors.append(f"{where}: query {t.get('refId')}: no expr")
                continue
            queries += 1
            names += check_expr(f"{where} query {t.get('refId')}", t["expr"])
        lines.append(f"ok {pid} {title}: {' '.join(sorted(set(names)))}")
    for e in errors:
        print(f"error: {e}")
    if errors:
        return 1
    for line in lines:
        print(line)
    print(f"ok dashboard: {len(panels)} panels, {queries} queries, "
          f"{len(used)} metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
