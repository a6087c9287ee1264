"""Before/after table from two runs of sync_bench.py (their ``--json`` rows).

    python bench/sync_bench.py --n 10000 100000 --json before.json     # on the old commit
    python bench/sync_bench.py --n 10000 100000 --json after.json      # on the new one
    python bench/compare.py before.json after.json

Prints, for each N both runs measured, one markdown table (seconds and peak
RSS per step, before and after, and the derived-stage lines), then the goal
lines (PASS/FAIL) of each run side by side. Timings on a shared machine move
with its load: the ratios within each run (x floor, x wire) are the fair
comparison, and the table shows them for b and B.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import table  # noqa: E402


def _cells(row: dict | None, rows: dict) -> str:
    if row is None:
        return "- | -"
    s = row["seconds"]
    secs = "failed" if s is None or row["detail"].get("errors") or row["detail"].get("error") else f"{s:.3f}"
    extra = ""
    a, a2 = rows.get("a", {}).get("seconds"), rows.get("a2", {}).get("seconds")
    if s and row["key"] in ("b", "B") and a and a2:
        extra = f" ({s / a:.2f}x a, {s / a2:.2f}x a')"
    return f"{secs}{extra} | {row['rss']:.0f}"


def _derived(row: dict | None) -> str:
    if row is None or "derived" not in row["detail"]:
        return "-"
    return f"{row['detail']['derived']:.3f}"


def compare(n: str, before: list[dict], after: list[dict]) -> str:
    b_by, a_by = {r["key"]: r for r in before}, {r["key"]: r for r in after}
    keys = list(dict.fromkeys([r["key"] for r in after] + [r["key"] for r in before]))
    out = [f"N = {int(n):,}", "",
           "| step | before: seconds | before: peak RSS MB | after: seconds | after: peak RSS MB |",
           "|---|---:|---:|---:|---:|"]
    for key in keys:
        if key == "size":
            continue
        label = (a_by.get(key) or b_by[key])["step"]
        out.append(f"| {label} | {_cells(b_by.get(key), b_by)} | {_cells(a_by.get(key), a_by)} |")
        if key in ("b", "c", "d", "d1"):
            out.append(f"| &nbsp;&nbsp;{key}+ derived stages | {_derived(b_by.get(key))} | | "
                       f"{_derived(a_by.get(key))} | |")
    sizes = [by.get("size", {}).get("detail", {}).get("bytes") for by in (b_by, a_by)]
    out.append("| database after b, MB per 100,000 messages | "
               + " | | ".join("-" if not s else f"{s / 1e6 / (int(n) / 100_000):.0f}" for s in sizes) + " | |")
    _t, verdicts_before = table(int(n), before)
    _t, verdicts_after = table(int(n), after)
    out += ["", "| goal | before | after |", "|---|---|---|"]
    for vb, va in zip(verdicts_before, verdicts_after, strict=True):
        if vb.endswith(":") and not vb.startswith(("PASS", "FAIL", "n/a", "info")):
            out.append(f"| **{vb.rstrip(':')}** | | |")
            continue
        what = va.split("  ", 1)[1].rsplit(":", 1)[0].strip() if "  " in va else va
        out.append(f"| {what} | {_short(vb)} | {_short(va)} |")
    return "\n".join(out)


def _short(verdict: str) -> str:
    word = verdict.split()[0]
    value = verdict.rsplit(":", 1)[1].strip() if ":" in verdict else ""
    return f"{word} {value}" if word in ("PASS", "FAIL", "n/a") else value or verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args()
    before, after = json.loads(args.before.read_text()), json.loads(args.after.read_text())
    for n in before:
        if n in after:
            print(compare(n, before[n], after[n]) + "\n")


if __name__ == "__main__":
    main()
