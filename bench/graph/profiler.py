"""Where the time goes, without patching anything: a deterministic profiler (``sys.setprofile`` in this thread,
``threading.setprofile`` for threads started while it is installed, such as the learner's worker thread) that
records, while it is active, the inclusive wall time and the calls of every function of the package under test
(``symphony_ros``) and of rclpy's ``Publisher.publish``, per thread.

Inclusive: a function's time includes the functions it calls (nested package functions are also listed on their
own); a recursive call is counted at every level. A call that was already running when the profiler became active,
or still runs when it stops, is not counted. The profile hook costs time itself (one Python call per function call
and return in the profiled threads), so a profiled step is slower than a timed one: compare the items with each
other and with the profiled pass's own wall time.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import symphony_ros

PACKAGE_DIR = str(Path(symphony_ros.__file__).resolve().parent) + "/"


def _label(code) -> str | None:
    """``module:Qualified.name`` for a package function, ``rclpy:Publisher.publish``; None for anything else."""
    fn = code.co_filename
    name = getattr(code, "co_qualname", code.co_name)     # co_qualname: Python 3.11+
    if fn.startswith(PACKAGE_DIR):
        mod = fn[len(PACKAGE_DIR):].removesuffix(".py").replace("/", ".")
        return f"{mod}:{name}"
    if code.co_name == "publish" and fn.endswith("rclpy/publisher.py"):
        return "rclpy:Publisher.publish"
    return None


class FunctionProfiler:
    """``install_for_new_threads()`` before the threads to profile are started (then ``uninstall_for_new_threads()``);
    ``start()``/``stop()`` around the part to measure (they also profile the calling thread); ``items(n)``: the
    totals divided by ``n`` (e.g. steps)."""

    def __init__(self) -> None:
        self.active = False
        self._generation = 0
        self._labels: dict[Any, str | None] = {}
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._tables: list[tuple[str, dict[str, list[float]]]] = []
        self.wall_s = 0.0
        self._t0 = 0.0

    # ------------------------------------------------------------------ control
    def install_for_new_threads(self) -> None:
        threading.setprofile(self._hook)

    def uninstall_for_new_threads(self) -> None:
        threading.setprofile(None)           # threads already started keep the hook (inactive when not started)

    def start(self) -> None:
        self._generation += 1                # forget call stacks of an earlier active period
        self.active = True
        self._t0 = time.perf_counter()
        sys.setprofile(self._hook)

    def stop(self) -> None:
        sys.setprofile(None)
        self.active = False
        self.wall_s += time.perf_counter() - self._t0

    # ------------------------------------------------------------------ the hook (every call and return)
    def _state(self):
        tls = self._tls
        st = getattr(tls, "stack", None)
        if st is None:
            tls.stack, tls.generation, tls.table = [], self._generation, {}
            with self._lock:
                self._tables.append((threading.current_thread().name, tls.table))
        elif tls.generation != self._generation:
            tls.stack.clear()
            tls.generation = self._generation
        return tls

    def _hook(self, frame, event: str, arg) -> None:
        if not self.active:
            return
        if event == "call":
            code = frame.f_code
            try:
                label = self._labels[code]
            except KeyError:
                label = self._labels[code] = _label(code)
            if label is not None:
                self._state().stack.append((frame, label, time.perf_counter()))
        elif event == "return":
            tls = self._state()
            st = tls.stack
            if st and st[-1][0] is frame:
                _, label, t0 = st.pop()
                e = tls.table.get(label)
                if e is None:
                    e = tls.table[label] = [0.0, 0]
                e[0] += time.perf_counter() - t0
                e[1] += 1

    # ------------------------------------------------------------------ results
    def items(self, n: int) -> dict[str, dict[str, float]]:
        """``{"module:function [thread]": {ms_per_step, calls_per_step}}``, largest time first."""
        with self._lock:
            tables = [(name, dict(t)) for name, t in self._tables]
        out = {}
        for thread, table in tables:
            for label, (t, calls) in table.items():
                out[f"{label} [{thread}]"] = dict(ms_per_step=1e3 * t / n, calls_per_step=calls / n)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["ms_per_step"]))


def top(items: dict[str, dict[str, float]], k: int) -> dict[str, dict[str, float]]:
    return dict(list(items.items())[:k])

