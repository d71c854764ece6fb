"""CLI start-up time: ``mt --help``, ``mt plugins``, ``mt list-tasks`` with the installed plugins.

Run: ``.venv/bin/python benchmarks/cli_startup.py [--runs 15]``. Prints JSON, then a markdown
table. Each command is run once to warm the file cache (a command that fails stops the script,
exit 1, with its error), then ``--runs`` times; the median and the best wall-clock times are
reported, plus whether torch/transformers/datasets got imported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

MT = str(Path(sys.executable).parent / "mt")
COMMANDS = [["--help"], ["plugins"], ["list-tasks"], ["list-tasks", "--json"], ["show-task", "rsg:terra"]]
PROBE = (
    "import sys\nfrom mtcore.cli.app import main\nsys.argv = ['mt', *{args!r}]\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "sys.stderr.write('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))\n"
)


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([MT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def check_runs(args: list[str]) -> None:
    """Stop (exit 1) when the command fails: timing a failure (a plugin missing, MT_LOAD_PLUGINS) would time the wrong thing."""
    done = subprocess.run([MT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"mt {' '.join(args)} exits {done.returncode}: {done.stderr.strip()[-500:]}")


def heavy_imports(args: list[str]) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True)
    if "HEAVY=" not in done.stderr:
        sys.exit(f"the import probe of mt {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stderr.rsplit("HEAVY=", 1)[-1].strip() or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    rows = []
    for args in COMMANDS:
        check_runs(args)  # also the run that warms the file cache
        times = [wall(args) for _ in range(runs)]
        rows.append({"command": "mt " + " ".join(args), "median_s": round(statistics.median(times), 3),
                     "best_s": round(min(times), 3), "heavy_imports": heavy_imports(args)})
    result = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
              "runs": runs, "results": rows}
    print(json.dumps(result, indent=2))
    print("\n| command | median (s) | best (s) | heavy imports |\n|---|---|---|---|")
    for row in rows:
        print(f"| `{row['command']}` | {row['median_s']} | {row['best_s']} | {row['heavy_imports']} |")


if __name__ == "__main__":
    main()
