"""Start-up cost of hf_vq as a ratio to ``import torch`` measured in the same run.

Each statement runs in a fresh interpreter, ``--repeats`` times, interleaved with the
others so that a busy machine slows every one alike; the median wall time is reported with
its ratio to ``import torch``. Targets (issue 15): ``hf-vq --help`` and each subcommand's
``--help`` below 1x (no torch at all), ``import hf_vq`` within 1.5x.

    python benchmarks/import_time.py              # 5 repeats
    python benchmarks/import_time.py --repeats 9 --json import_time.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
COMMANDS = ["train", "convert", "evaluate", "benchmark", "push", "tokenize", "train-ar", "generate"]
CASES = {
    "import torch": ["-c", "import torch"],
    "import hf_vq": ["-c", "import hf_vq"],
    "import hf_vq + AutoModel.from_config": [
        "-c",
        "import hf_vq\nfrom transformers import AutoModel\n"
        "AutoModel.from_config(hf_vq.VQVAEConfig(hidden_dim=8, codebook_size=8, codebook_dim=4, image_size=8))",
    ],
    "hf-vq --help": ["-m", "hf_vq.cli.main", "--help"],
    **{f"hf-vq {command} --help": ["-m", "hf_vq.cli.main", command, "--help"] for command in COMMANDS},
}


def run_once(arguments: list) -> float:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    times = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, arguments in CASES.items():
            times[name].append(run_once(arguments))
    torch_seconds = statistics.median(times["import torch"])
    results = {name: {"median_s": statistics.median(values), "ratio_to_torch": statistics.median(values) / torch_seconds}
               for name, values in times.items()}
    width = max(map(len, results))
    print(f"{'statement':<{width}}  median s  x import torch   ({args.repeats} runs each, {os.cpu_count()} CPUs)")
    for name, result in results.items():
        print(f"{name:<{width}}  {result['median_s']:8.2f}  {result['ratio_to_torch']:6.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
