"""The README's performance table, generated from ``benchmarks/RESULTS.md`` (never typed).

    python benchmarks/readme_table.py            # print the block
    python benchmarks/readme_table.py --write    # replace the block in README.md
    python benchmarks/readme_table.py --check    # exit 1 when README.md's block is stale

The block sits between ``<!-- performance:start -->`` and ``<!-- performance:end -->`` in
README.md; it is the "Machine" section and the summary table of RESULTS.md, as written by
``benchmarks/run_all.py``.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
README = ROOT / "README.md"
START, END = "<!-- performance:start -->", "<!-- performance:end -->"
SUMMARY_START, SUMMARY_END = "<!-- summary:start -->", "<!-- summary:end -->"


def _between(text: str, start: str, end: str, what: str) -> str:
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{what} must hold exactly one {start} ... {end} block; regenerate it.")
    return text[text.index(start) + len(start) : text.index(end)].strip("\n")


def machine_section(results_text: str) -> str:
    lines, inside = [], False
    for line in results_text.splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Machine"
            continue
        if inside and line.startswith("- "):
            lines.append(line)
    if not lines:
        raise ValueError("RESULTS.md has no '## Machine' section; regenerate it with benchmarks/run_all.py.")
    return "\n".join(lines)


def readme_block(results_text: str) -> str:
    """The README block for a RESULTS.md text."""
    mode = "quick" if "mode: quick" in results_text else "full"
    return "\n".join([
        f"Generated from `benchmarks/RESULTS.md` ({mode} run of `python benchmarks/run_all.py`; "
        "`python benchmarks/readme_table.py --write` rewrites this block). Every ratio compares runs taken "
        "side by side in that one run; RESULTS.md has every table, the spreads and the peak memory, and "
        "`benchmarks/results.png` plots the ratios.",
        "",
        machine_section(results_text),
        "",
        _between(results_text, SUMMARY_START, SUMMARY_END, "RESULTS.md"),
    ])


def replace_block(readme_text: str, block: str) -> str:
    _between(readme_text, START, END, "README.md")
    head, rest = readme_text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="update README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's block differs")
    args = parser.parse_args(argv)
    block = readme_block(RESULTS.read_text())
    readme = README.read_text()
    updated = replace_block(readme, block)
    if args.write:
        README.write_text(updated)
    elif args.check:
        if updated != readme:
            print("README.md's performance block is stale: run python benchmarks/readme_table.py --write")
            return 1
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
