"""Start-up of the command line: wall time and peak memory of ``scalinglab --version``,
``--help`` and ``runs --help`` beside ``python -c pass``, measured in the same run.

    python benchmarks/bench_cli.py              # 7 runs of each, interleaved; medians
    python benchmarks/bench_cli.py --repeat 15

Each command runs in a fresh interpreter exactly as the ``scalinglab`` script runs it
(``from scalinglab.cli import main; main()``), wrapped so that at exit it writes its own peak
resident set size (``VmHWM`` from ``/proc/self/status``; ``ru_maxrss`` of a child would carry
this process's size across fork and exec). Wall time is measured here, around the whole child:
interpreter start, imports, parsing and output; CPU seconds (user + system of the child) are
printed too, as on a shared machine they move less with other processes' load than wall time.
The commands take turns, so load from other
processes on a shared machine falls on all of them alike; the median counts.

Targets (issue 28): ``--version`` median <= 1.0 s and <= 200 MB on 2 cores; the ratios to
``python -c pass`` show what scalinglab itself adds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
TARGET_SECONDS = 1.0
TARGET_MB = 200.0

#: written into each child: its own peak RSS, at exit, to the file named by argv[1]
WRAPPER = r"""
import atexit, sys
def _peak(path=sys.argv[1]):
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(str(kb / 1024))
atexit.register(_peak)
sys.argv = ["scalinglab", *sys.argv[2:]]
{body}
"""

CASES: dict[str, tuple[str, list[str]]] = {
    "python -c pass": ("pass", []),
    "scalinglab --version": ("from scalinglab.cli import main; main()", ["--version"]),
    "scalinglab --help": ("from scalinglab.cli import main; main()", ["--help"]),
    "scalinglab runs --help": ("from scalinglab.cli import main; main()", ["runs", "--help"]),
}


def run_once(body: str, args: list[str], peak_file: Path) -> tuple[float, float, float]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "100"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAPPER.format(body=body), str(peak_file), *args],
                         capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        raise SystemExit(f"{args} failed ({out.returncode}):\n{out.stderr}")
    return seconds, float(peak_file.read_text()), cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs of each command; the median counts")
    args = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in CASES}
    peaks: dict[str, list[float]] = {k: [] for k in CASES}
    cpus: dict[str, list[float]] = {k: [] for k in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        for _ in range(args.repeat):
            for name, (body, argv) in CASES.items():
                s, mb, cpu = run_once(body, argv, peak_file)
                times[name].append(s)
                peaks[name].append(mb)
                cpus[name].append(cpu)
    base_s = statistics.median(times["python -c pass"])
    base_mb = statistics.median(peaks["python -c pass"])
    base_cpu = statistics.median(cpus["python -c pass"])
    print(f"{'':24} {'median s':>9} {'x pass':>7} {'CPU s':>7} {'x pass':>7} {'peak MB':>8} "
          f"{'x pass':>7}   all runs (s)")
    rows = {}
    for name in CASES:
        s, mb = statistics.median(times[name]), statistics.median(peaks[name])
        cpu = statistics.median(cpus[name])
        rows[name] = {"seconds": s, "peak_mb": mb, "cpu_s": cpu, "time_ratio": s / base_s,
                      "cpu_ratio": cpu / base_cpu, "mb_ratio": mb / base_mb}
        every = " ".join(f"{x:.2f}" for x in times[name])
        print(f"{name:24} {s:9.3f} {s / base_s:7.2f} {cpu:7.3f} {cpu / base_cpu:7.2f} {mb:8.1f} "
              f"{mb / base_mb:7.2f}   {every}")
    v = rows["scalinglab --version"]
    print(f"--version: {v['seconds']:.2f} s (target <= {TARGET_SECONDS:g} s: "
          f"{'met' if v['seconds'] <= TARGET_SECONDS else 'NOT met'}), {v['peak_mb']:.0f} MB "
          f"(target <= {TARGET_MB:g} MB: {'met' if v['peak_mb'] <= TARGET_MB else 'NOT met'})")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
