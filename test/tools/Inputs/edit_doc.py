#!/usr/bin/env python3
"""Prints a multi-document YAML file with edits, for k8s-schema.test's
broken variants of k8s-good.yaml.

  k8s_edit.py FILE EDIT...

EDIT is DOC:PATH=VALUE (set; VALUE is YAML, so "true", "8", "[a, b]" and
'"0"' are typed as YAML types them) or DOC:PATH (delete). DOC is the
document's index from 0; PATH is dotted keys with [i] for list items, as
spec.leaderWorkerTemplate.workerTemplate.spec.containers[0].image. A key
with dots in it (a label) goes in quotes: metadata.labels."a.b/c".
"""
import re
import sys

import yaml

TOKEN = re.compile(r'\.?(?:"([^"]+)"|([^.\[\]"]+))|\[(\d+)\]')


def parse_path(path):
    parts, pos = [], 0
    while pos < len(path):
        m = TOKEN.match(path, pos)
        if not m:
            sys.exit(f"k8s_edit.py: bad path {path!r} at {pos}")
        parts.append(int(m.group(3)) if m.group(3) else m.group(1) or m.group(2))
        pos = m.end()
    return parts


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        docs = list(yaml.safe_load_all(f))
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
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))


if __name__ == "__main__":
    main()
