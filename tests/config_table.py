#!/usr/bin/python3
"""The README's configuration table against the options table: every key `moetrain train --help`
lists has a row and every row's key exists, each with the default the binary shows (a row
"`a.x`, `y` | 1, 2" holds a.x = 1 and a.y = 2; a default's words in parentheses are comments).

usage: config_table.py SOURCE_DIR BINARY
"""
import re
import subprocess
import sys

src, binary = sys.argv[1], sys.argv[2]
out = subprocess.run([binary, "train", "--help"], check=True, capture_output=True, text=True).stdout
shown = dict(re.findall(r"^  --([a-z_]+\.[a-z0-9_]+) arg \(=([^)]*)\)", out, re.M))

readme = open(f"{src}/README.md").read()
start = readme.index("### Configuration")
section = readme[start:readme.index("\n### ", start + 5)]
table, status = {}, 0
for line in section.splitlines():
    if not line.startswith("| `"):
        continue
    cells = line.strip("|").split(" | ")
    keys, prefix = [], None
    for k in re.findall(r"`([^`]+)`", cells[0]):
        if "." in k:
            prefix, k = k.split(".", 1)
        keys.append(f"{prefix}.{k}")
    defaults = [re.sub(r" \(.*\)$", "", d.strip()) for d in cells[1].split(", ")]
    if len(defaults) != len(keys):
        print(f"FAIL: row {cells[0]}: {len(keys)} keys, {len(defaults)} defaults")
        status = 1
        continue
    table.update(zip(keys, defaults))


def same(a, b):
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


for k in sorted(set(shown) - set(table)):
    print(f"FAIL: {k} (moetrain train --help) has no row in the README's configuration table")
    status = 1
for k in sorted(set(table) - set(shown)):
    print(f"FAIL: the README's configuration table names {k}, which moetrain train --help lacks")
    status = 1
for k in sorted(set(table) & set(shown)):
    if not same(table[k], shown[k]):
        print(f"FAIL: {k}: the README's table says {table[k]}, the binary {shown[k]}")
        status = 1
if status == 0:
    print(f"ok: the README's configuration table holds all {len(shown)} keys with their defaults")
sys.exit(status)
