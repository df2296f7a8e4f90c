#!/usr/bin/python3
"""Print README.md's Performance tables from one bench results file.

Usage: bench/readme_table.py [bench/results/latest.json]

One Markdown table per place the run measured in (test host, PVM, arm64
test host): each main row with the two medians, [min-max], the ratio, and
the -best pair where the row has one; vibevmm's two virtio transports
(the transport benchmark) in a table of their own; then the run's goal
table. The README
pastes this output as it is, so that its figures are one run's."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import fmt  # noqa: E402 (the tables' number format)


def cell(s, who):
    med = s.get(f"{who}_median")
    if med is None:
        return "n/a"
    return f"{fmt(med)} [{fmt(s.get(f'{who}_min'))}-{fmt(s.get(f'{who}_max'))}]"


def main_rows(run):
    for r in run["rows"]:
        if r["table"] != "main" or not (r["a"] or r["b"]):
            continue
        s = r["summary"]
        ratio = s.get("ratio")
        line = (f"| {r['bench']} | {r['case']} | {r['metric']} ({r['unit']}) | {cell(s, 'a')} | "
                f"{cell(s, 'b')} | {fmt(ratio) if ratio is not None else 'n/a'} |")
        if "ratio_best" in s:
            line += (f" {fmt(s.get('a2_median'))} / {fmt(s.get('b2_median'))}: "
                     f"{fmt(s['ratio_best'])} |")
        else:
            line += " |"
        yield line


def transport_rows(run):
    for r in run["rows"]:
        if r["table"] != "transport" or not (r["a"] or r["b"]):
            continue
        s = r["summary"]
        ratio = s.get("ratio")
        yield (f"| {r['case']} | {r['metric']} ({r['unit']}) | {cell(s, 'a')} | {cell(s, 'b')} | "
               f"{fmt(ratio) if ratio is not None else 'n/a'} | {len(r['a'])}/{len(r['b'])} |")


def print_run(run):
    print(f"**{run['where']}** ({run['started']}, {run['seconds']:.0f} s, "
          f"{run['reps']} runs per case unless n says otherwise; machine load "
          f"{run.get('machine_load', '?')}):\n")
    main = list(main_rows(run))
    if main:
        print("| bench | case | metric | vibevmm | QEMU | ratio | -best: vibevmm / QEMU: ratio |")
        print("|---|---|---|---|---|---|---|")
    for line in main:
        print(line)
    trans = list(transport_rows(run))
    if trans:
        print("\n" if main else "", end="")
        print("| case | metric | virtio-pci | virtio-mmio | ratio pci / mmio | n |")
        print("|---|---|---|---|---|---|")
        for line in trans:
            print(line)
    if run.get("goals"):
        print("\n| goal | target | measured | met |")
        print("|---|---|---|---|")
        for g in run["goals"]:
            print(f"| {g['goal']} | {g['target']} | {g['measured']} | {g['met']} |")
    for e in run.get("errors") or []:
        print(f"\nError in this run: {e['bench']}: {e['error'].splitlines()[0]}")
    print()


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json"
    with open(path) as f:
        data = json.load(f)
    for run in data["runs"]:
        print_run(run)


if __name__ == "__main__":
    main()
