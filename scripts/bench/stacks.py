"""Summarise py-spy collapsed stacks: share of samples by frame (inclusive), top N.

python scripts/bench/stacks.py PROFILE.txt [--top 40] [--match ingest/]
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path


def main() -> None:
    """Print inclusive sample shares per function."""
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only frames whose text contains this")
    args = parser.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in args.file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            name = re.sub(r":\d+\)$", ")", frame.strip())
            if name not in seen and args.match in name:
                seen.add(name)
                inclusive[name] += n
    for name, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
