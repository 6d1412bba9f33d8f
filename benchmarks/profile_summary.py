"""Where a profiled server spent its time: top functions of py-spy collapsed stacks.

``python -m benchmarks.profile_summary STACKS.txt [--top 25] [--under FUNC]`` reads the
``--format raw`` output that ``push_latency --profile`` writes (one line per
distinct stack, ``frame;frame;... COUNT``) and prints the functions with the
largest inclusive and self share of samples. ``--under`` keeps only stacks
passing through a function whose name contains the given text.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"\s*:\d+\)$")


def _frame(raw: str) -> str:
    """``func (file.py:123)`` -> ``func (file.py)``: group a function's lines together."""
    return _LINE.sub(")", raw.strip())


def load(path: Path, under: str = "") -> tuple[Counter[str], Counter[str], int]:
    """Inclusive and self sample counts per function, and the total sample count."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        if under and not any(under in f for f in frames):
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    return inclusive, own, total


def main(argv: list[str] | None = None) -> int:
    """Print the top functions by inclusive and by self samples."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_summary")
    p.add_argument("stacks", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--under", default="", help="only stacks through this function")
    a = p.parse_args(argv)
    inclusive, own, total = load(a.stacks, a.under)
    if not total:
        print("no samples")
        return 1
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title} ({total} samples)")
        for frame, n in counts.most_common(a.top):
            print(f"{100 * n / total:6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
