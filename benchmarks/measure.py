"""Run a command in its own process and measure it: wall time, the process's own peak RSS
(``wait4``), and, sampled every 0.2 s over its whole process tree (worker processes included),
the peak of the summed PSS and the peak of the summed anonymous memory (RSS without pages of
memory-mapped files, such as a Hugging Face dataset being read). Used by the benchmark
scripts beside it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measured:
    """What one command cost."""

    wall_s: float
    rss_mib: float  # the top process's own peak resident set size
    tree_mib: float  # peak of the summed PSS of the process and all its descendants
    anon_mib: float  # peak of the summed anonymous RSS (no file-backed pages) of the tree
    output: str
    cpu_s: float = 0.0  # user + system CPU of the process and the children it waited for

    @property
    def peak_mib(self) -> float:
        """The larger of the two: what the command needed at its peak."""
        return max(self.rss_mib, self.tree_mib)


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return pids


def _field_kib(path: str, field: str) -> int:
    """A ``Field:  N kB`` line of a /proc file, 0 when the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    return _field_kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def _anon_kib(pid: int) -> int:
    return _field_kib(f"/proc/{pid}/status", "RssAnon:")


def run(args: Sequence[str], cwd: Path, log: Path, env: dict | None = None) -> Measured:
    """Run ``args`` in ``cwd``; its output goes to ``log``. Exits with the log's tail if the
    command fails, so a broken step never produces a number."""
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    peak_tree = peak_anon = 0
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(a) for a in args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            pids = _tree(proc.pid)
            peak_tree = max(peak_tree, sum(_pss_kib(p) for p in pids))
            peak_anon = max(peak_anon, sum(_anon_kib(p) for p in pids))
            time.sleep(0.2)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{text[-4000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(wall, usage.ru_maxrss / 1024, peak_tree / 1024, peak_anon / 1024, text, cpu)


def fresh_workdir(workdir: Path | None, prefix: str) -> Path:
    """An empty folder to work in: ``workdir`` emptied, or a new temporary folder."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return workdir


def write_results(out: Path, name: str, info: dict, rows: list[dict], markdown: str) -> None:
    """``<name>.json`` (machine and runs) and ``<name>.md`` (the table) in ``out``; prints the
    table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"machine": info, "runs": rows}, indent=2))
    (out / f"{name}.md").write_text(markdown)
    print()
    print(markdown)
