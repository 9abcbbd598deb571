#!/usr/bin/python3
"""Extracts the default moetrain corpus from Debian's SWORD packages into train/valid/test text.

The World English Bible, the King James Bible and Spurgeon's Treasury of David (all public domain).
Split by document, never by line (docs/design.md, "Data"): Bibles: Psalms -> valid, Proverbs ->
test, every other book -> train; Treasury of David: entry index % 20 == 18 -> valid, == 19 -> test.

usage: extract_corpus.py OUT_DIR
"""
import html
import os
import re
import subprocess
import sys

BIBLES = ["engWEB2015eb", "engKJV2006eb"]
# Book ranges in canonical order; Psalms and Proverbs are held out.
RANGES = {
    "train": ["Gen 1:1-Job 42:17", "Eccl 1:1-Rev 22:21"],
    "valid": ["Ps 1:1-Ps 150:6"],
    "test": ["Prov 1:1-Prov 31:31"],
}
VERSE_PREFIX = re.compile(r"^\s*(?:[1-3] ?)?[A-Za-z ()]+ \d+:\d+: ")
TAG = re.compile(r"<[^>]*>")
SPACES = re.compile(r"[ \t]+")


def run(cmd):
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit(f"extract_corpus: '{cmd[0]}' not found; run scripts/setup.sh first")
    except subprocess.CalledProcessError as e:
        sys.exit(f"extract_corpus: {' '.join(cmd)} failed: {e.stderr.strip()}")


def bible_text(module, key):
    """One verse per paragraph, the 'Book c:v: ' prefixes and the module trailer removed."""
    out = run(["diatheke", "-b", module, "-f", "plain", "-k", key])
    lines = []
    for line in out.splitlines():
        if line.startswith("(eng"):
            continue
        lines.append(VERSE_PREFIX.sub("", line).rstrip())
    text = "\n".join(lines).strip()
    if not text:
        sys.exit(f"extract_corpus: diatheke returned no text for {module} {key}")
    return text


def tdavid_entries():
    """Treasury of David entries: tags stripped, entities unescaped, duplicates dropped."""
    raw = run(["mod2imp", "TDavid"])
    entries, seen = [], set()
    for chunk in raw.split("$$$")[1:]:
        body = chunk.split("\n", 1)[1] if "\n" in chunk else ""
        body = html.unescape(TAG.sub(" ", body))
        body = "\n".join(SPACES.sub(" ", l).strip() for l in body.splitlines())
        body = re.sub(r"\n{2,}", "\n", body).strip()
        if len(body) < 200 or body in seen:
            continue
        seen.add(body)
        entries.append(body)
    return entries


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    parts = {split: [] for split in RANGES}
    for module in BIBLES:
        for split, keys in RANGES.items():
            parts[split].extend(bible_text(module, k) for k in keys)
    entries = tdavid_entries()
    for i, body in enumerate(entries):
        split = {18: "valid", 19: "test"}.get(i % 20, "train")
        parts[split].append(body)
    for split, texts in parts.items():
        path = os.path.join(out_dir, f"{split}.txt")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        os.replace(path + ".tmp", path)
        size = os.path.getsize(path)
        print(f"extract_corpus: {path} {size / 1e6:.1f} MB")
    print(f"extract_corpus: {len(entries)} Treasury of David entries")


if __name__ == "__main__":
    main()
