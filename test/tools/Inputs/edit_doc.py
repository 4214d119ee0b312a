#!/usr/bin/env python3
"""Prints a multi-document YAML file, or a JSON file, with edits: the
broken variants of k8s-schema.test (of k8s-good.yaml) and dashboard.test
(of deploy/grafana/weft.json).

  edit_doc.py FILE EDIT...

EDIT is DOC:PATH=VALUE (set; VALUE is YAML, so "true", "8", "[a, b]" and
'"0"' are typed as YAML types them) or DOC:PATH (delete). DOC is the
document's index from 0; PATH is dotted keys with [i] for list items, as
spec.leaderWorkerTemplate.workerTemplate.spec.containers[0].image. A key
with dots in it (a label) goes in quotes: metadata.labels."a.b/c".
A FILE named *.json is read and written as one JSON document (DOC 0).
"""
import json
import re
import sys

import yaml

TOKEN = re.compile(r'\.?(?:"([^"]+)"|([^.\[\]"]+))|\[(\d+)\]')


def parse_path(path):
    parts, pos = [], 0
    while pos < len(path):
        m = TOKEN.match(path, pos)
        if not m:
            sys.exit(f"edit_doc.py: bad path {path!r} at {pos}")
        parts.append(int(m.group(3)) if m.group(3) else m.group(1) or m.group(2))
        pos = m.end()
    return parts


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    is_json = sys.argv[1].endswith(".json")
    with open(sys.argv[1]) as f:
        docs = [json.load(f)] if is_json else list(yaml.safe_load_all(f))
    for edit in sys.argv[2:]:
        where, eq, value = edit.partition("=")
        doc, _, path = where.partition(":")
        parts = parse_path(path)
        node = docs[int(doc)]
        for p in parts[:-1]:
            node = node[p]
        if eq:
            node[parts[-1]] = yaml.safe_load(value)
        else:
            del node[parts[-1]]
    if is_json:
        json.dump(docs[0], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))


if __name__ == "__main__":
    main()
