#!/usr/bin/env python3
"""Inference latency of the exported actor: torch eager vs TorchScript vs onnxruntime, at Humanoid-v5 sizes.

For each preset (S3: h = 512, ED: h = 384; obs 348, act 17) a training checkpoint is made, exported with
``symphony_ros.core.export.export_policy`` to ``pt``, ``torchscript`` and ``onnx``, loaded back with
``symphony_ros.control.inference.load_policy`` and timed the way the actor node runs it: ONE observation per call
(``Policy.act``: numpy in, numpy out, input check included), single thread (torch.set_num_threads(1), onnxruntime
intra_op_num_threads = 1). Per backend: ``--calls`` timed calls after ``--warmup`` untimed ones, interleaved with
the other backends in ``--rounds`` chunks (a load change hits all alike), deterministic
(act_gain 1, noise_gain 0) and exploring (noise_gain 1, ε drawn by the backend); p50 / p99 / mean in µs.
Also the exported file sizes. No timing is asserted anywhere; figures depend on the machine and its load.

Usage:  python bench/bench_export.py [--presets s3,ed] [--calls 5000] [--warmup 500] [--rounds 10] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # lets the bench run from a plain checkout
    sys.path.insert(0, str(ROOT))

from _machine import cpu_model  # noqa: E402
from symphony_ros.control.inference import load_policy  # noqa: E402
from symphony_ros.core.agent import SymphonyAgent  # noqa: E402
from symphony_ros.core.checkpoint import save_checkpoint  # noqa: E402
from symphony_ros.core.config import load_preset  # noqa: E402
from symphony_ros.core.export import export_policy  # noqa: E402

OBS_DIM, ACT_DIM = 348, 17           # Humanoid-v5
BACKENDS = (("torch eager", "pt", "pt"), ("TorchScript", "torchscript", "ts"), ("onnxruntime", "onnx", "onnx"))


def _checkpoint(path: Path, preset: str) -> int:
    cfg = load_preset(preset, dict(n_exp=400, buffer_times=1))
    agent = SymphonyAgent(OBS_DIM, ACT_DIM, cfg, device="cpu", seed=0)
    save_checkpoint(path, dict(kind="training", agent=agent.state_dict()))
    return sum(p.numel() for p in agent.actor.parameters())


def _time_interleaved(policies: dict, xs: np.ndarray, warmup: int, noise_gain: float, rounds: int
                      ) -> dict[str, np.ndarray]:
    """µs per call of each policy, the calls split into ``rounds`` chunks that alternate between the backends, so a
    load change on a shared machine hits all of them alike."""
    for policy in policies.values():
        for i in range(warmup):
            policy.act(xs[i % len(xs)], act_gain=1.0, noise_gain=noise_gain)
    out = {k: np.empty(len(xs)) for k in policies}
    clock = time.perf_counter_ns
    for chunk in np.array_split(np.arange(len(xs)), rounds):
        for name, policy in policies.items():
            times = out[name]
            for i in chunk:
                x = xs[i]
                t0 = clock()
                policy.act(x, act_gain=1.0, noise_gain=noise_gain)
                times[i] = clock() - t0
    return {k: v / 1e3 for k, v in out.items()}


def _stats(us: np.ndarray) -> dict[str, float]:
    return dict(p50_us=float(np.percentile(us, 50)), p99_us=float(np.percentile(us, 99)), mean_us=float(us.mean()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="s3,ed")
    ap.add_argument("--calls", type=int, default=5000, help="timed calls per backend and mode")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=10, help="chunks the timed calls alternate between backends in")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    import onnxruntime as ort
    info = dict(cpu=cpu_model(), cores=os.cpu_count(), python=platform.python_version(), torch=torch.__version__,
                onnxruntime=ort.__version__, threads=1, calls=args.calls, warmup=args.warmup,
                loadavg_start=os.getloadavg())
    print(f"# bench_export: {info['cpu']} ({info['cores']} cores), Python {info['python']}, torch {info['torch']}, "
          f"onnxruntime {info['onnxruntime']}; 1 thread; {args.calls} timed calls per row after {args.warmup} "
          f"warm-up; load average at start {info['loadavg_start'][0]:.2f}")
    print("# one observation per call through Policy.act (numpy in/out), Humanoid-v5 dims obs 348, act 17")
    results = []
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(args.calls, OBS_DIM)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
            ckpt = Path(tmp) / f"{preset}.pt"
            n_params = _checkpoint(ckpt, preset)
            print(f"\n## {preset.upper()} actor: hidden {load_preset(preset).hidden_dim}, {n_params:,} parameters "
                  f"(training checkpoint {ckpt.stat().st_size / 2**20:.1f} MiB)")
            print(f"{'backend':<13} {'file':>10} {'export |Δ|':>10}  {'mode':<13} {'p50 µs':>8} {'p99 µs':>8} "
                  f"{'mean µs':>8}")
            exports, policies = {}, {}
            for label, fmt, suffix in BACKENDS:
                t0 = time.perf_counter()
                exports[label] = (export_policy(ckpt, Path(tmp) / f"{preset}_actor.{suffix}", fmt),
                                  time.perf_counter() - t0)
                policies[label] = load_policy(exports[label][0].path, seed=0, threads=1)
            for mode, noise_gain in (("deterministic", 0.0), ("exploring", 1.0)):
                timings = _time_interleaved(policies, xs, args.warmup, noise_gain, args.rounds)
                for label, fmt, _ in BACKENDS:
                    res, export_s = exports[label]
                    st = _stats(timings[label])
                    diff = "exact" if res.max_abs_diff is None else f"{res.max_abs_diff:.1e}"
                    results.append(dict(preset=preset, backend=label, format=fmt, mode=mode,
                                        file_bytes=res.size_bytes, export_s=export_s,
                                        export_max_abs_diff=res.max_abs_diff, **st))
                    print(f"{label:<13} {res.size_bytes / 1024:>6.0f} KiB {diff:>10}  {mode:<13} "
                          f"{st['p50_us']:>8.1f} {st['p99_us']:>8.1f} {st['mean_us']:>8.1f}")
            print("export time: " + ", ".join(f"{r['format']} {r['export_s']:.1f} s" for r in results
                                             if r["preset"] == preset and r["mode"] == "deterministic"))
    info["loadavg_end"] = os.getloadavg()
    print(f"\n# load average at end {info['loadavg_end'][0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=info, results=results), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
