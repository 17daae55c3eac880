"""Where the centre's CPU goes during a drain (bench/central.py's measuring side).

- :class:`CpuMeter`: CPU seconds of named process groups (the broker, PostgreSQL, the listeners)
  between ``start()`` and ``stop()``, from ``/proc/<pid>/stat``: a process and its descendants
  (:func:`tree_cpu_s`; PostgreSQL's backends included; children that already ended count
  through their parent's ``cutime``).
- :func:`thread_cpu` / :func:`thread_names`: a listener's CPU per thread (``/proc/<pid>/task``),
  named by ``py-spy dump`` (Python 3.11 does not give threads an OS name).
- :class:`Spy`: ``py-spy record --native --threads --format raw`` on one listener; :func:`summarize`
  turns its collapsed stacks into the share of samples per thread, the top frames by self time
  (the innermost frame, native ones collapsed to their library) and the innermost Python frames
  (where the time goes from the code's point of view).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: Path) -> list[str] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # after "pid (comm)": state is [0]


def pid_cpu_s(pid: int, *, children: bool = True) -> float:
    """utime + stime (+ reaped children's) of one process, seconds."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and every live descendant, with the children each has reaped (a
    process that ends moves its CPU into its parent's ``cutime``: the sum stays whole). By parent,
    not by session: PostgreSQL's children each call ``setsid()``."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry / "stat")
        if fields is None:
            continue
        pid = int(entry.name)
        children[int(fields[1])].append(pid)
        cpu[pid] = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / _TICK
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total


def machine_busy_s() -> float:
    """CPU seconds every process of the machine used (``/proc/stat``: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


class CpuMeter:
    """CPU seconds per named group over an interval, and the wall time; ``other`` is what the rest
    of the machine used meanwhile (a shared machine: the cores the measured parts did not get)."""

    def __init__(self, groups: dict[str, Callable[[], float]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = os.times().elapsed
        self._start = {name: read() for name, read in self.groups.items()}
        self._machine = machine_busy_s()

    def stop(self) -> dict[str, Any]:
        wall = os.times().elapsed - self._t0
        used = {name: read() - self._start.get(name, 0.0) for name, read in self.groups.items()}
        used["other"] = max(0.0, machine_busy_s() - self._machine - sum(used.values()))
        return {
            "wall_s": round(wall, 2),
            "cpu_s": {name: round(v, 2) for name, v in used.items()},
            "cores_busy": {name: round(v / wall, 2) for name, v in used.items()} if wall > 0 else {},
        }


def thread_cpu(pid: int) -> dict[int, float]:
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = _stat_fields(task / "stat")
            if fields is not None:
                out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


_DUMP_THREAD = re.compile(r'^Thread (\d+) \([^)]*\): "([^"]*)"', re.M)


def thread_names(pid: int) -> dict[int, str]:
    """tid -> Python thread name, from ``py-spy dump`` (empty without py-spy)."""
    exe = shutil.which("py-spy")
    if exe is None:
        return {}
    try:
        done = subprocess.run([exe, "dump", "--pid", str(pid)], check=False, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return {}
    return {int(tid): name for tid, name in _DUMP_THREAD.findall(done.stdout)}


def named_thread_split(before: dict[int, float], after: dict[int, float], names: dict[int, str]) -> dict[str, float]:
    """CPU seconds per thread name between two :func:`thread_cpu` readings."""
    split: dict[str, float] = collections.Counter()
    for tid, cpu in after.items():
        split[names.get(tid, f"tid-{tid}")] += cpu - before.get(tid, 0.0)
    return {name: round(v, 2) for name, v in sorted(split.items(), key=lambda kv: -kv[1]) if v >= 0.01}


class Spy:
    """``py-spy record`` on one process until :meth:`stop` (SIGINT: py-spy then writes its file)."""

    def __init__(self, pid: int, out: Path, *, rate: int = 97) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        self.out = out
        argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--native", "--threads"]
        argv += ["--format", "raw", "--output", str(out)]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self, top: int = 25) -> dict[str, Any]:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if not self.out.exists():
            return {"error": "py-spy wrote nothing"}
        return summarize(self.out.read_text(), top)


_NATIVE = re.compile(r"^0x[0-9a-f]+ \((.+)\)$")
_FRAME = re.compile(r"^(.*) \(([^():]+)(?::\d+)?\)$")
# a sample whose innermost frames are one of these is a thread waiting for work or I/O (py-spy
# --native keeps such samples) ...
_IDLE = {
    "poll",
    "epoll_wait",
    "select",
    "nanosleep",
    "clock_nanosleep",
    "sem_clockwait",
    "sem_timedwait",
    "sem_wait",
    "lock_PyThread_acquire_lock",
    "PyThread_acquire_lock_timed",
    "Condition.wait",
    "Event.wait",
    "time_sleep",
}
# ... and one blocked in these otherwise waits for the GIL (after a C call released it)
_GIL = {"pthread_cond_timedwait", "pthread_cond_wait", "pthread_mutex_lock", "take_gil"}


def _name(frame: str) -> str:
    named = _FRAME.match(frame)
    return named.group(1) if named else frame


def _leaf_name(frame: str) -> str:
    """A native address becomes its library; a Python frame keeps ``function (file)`` without the line."""
    native = _NATIVE.match(frame)
    if native:
        return f"[{native.group(1)}]"
    named = _FRAME.match(frame)
    return f"{named.group(1)} ({named.group(2)})" if named else frame


def _is_python(frame: str) -> bool:
    named = _FRAME.match(frame)
    return bool(named and named.group(2).endswith(".py"))


def classify(frames: list[str]) -> str:
    """``idle`` (waiting for work or I/O), ``gil`` (waiting to run) or ``cpu``."""
    names = [_name(f) for f in frames[1:]]
    inner = next((n for f, n in zip(reversed(frames[1:]), reversed(names), strict=True) if _is_python(f)), "")
    if inner in _IDLE or any(n in _IDLE for n in names[-4:]):
        return "idle"
    if any(n in _GIL for n in names[-3:]):
        return "gil"
    return "cpu"


def summarize(raw: str, top: int = 25) -> dict[str, Any]:
    """Per thread: percent of its samples on CPU, waiting for the GIL, idle; then, over the samples
    on CPU only (percent of all on-CPU samples), the top self frames and innermost Python frames."""
    states: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaves: collections.Counter[str] = collections.Counter()
    python: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        state = classify(frames)
        states[thread][state] += count
        if state != "cpu":
            continue
        leaves[f"{thread}: {_leaf_name(frames[-1])}"] += count
        inner = next((f for f in reversed(frames[1:]) if _is_python(f)), frames[-1])
        python[f"{thread}: {_leaf_name(inner)}"] += count
    on_cpu = sum(c["cpu"] for c in states.values())
    if not on_cpu:
        return {"samples": sum(sum(c.values()) for c in states.values()), "on_cpu": 0}

    def pct(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / on_cpu, 1)] for name, n in counter.most_common(top)]

    threads = {
        name: {k: round(100 * c[k] / sum(c.values()), 1) for k in ("cpu", "gil", "idle")} | {"samples": sum(c.values())}
        for name, c in sorted(states.items(), key=lambda kv: -kv[1]["cpu"])
    }
    return {"on_cpu_samples": on_cpu, "threads": threads, "self_pct": pct(leaves), "python_pct": pct(python)}
