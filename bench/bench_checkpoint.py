#!/usr/bin/env python3
"""Checkpoint cost with full-size buffers: the incremental save (AgentCheckpoints: only what changed since the last
save) against one file holding everything (what every save wrote before), measured in the same run.

For S3 (512,000 fp32 slots) and ED (384,000 slots, fp16 observations) at Humanoid-v5 sizes (obs 348, act 17), on
this machine's disk: (1) the first save after the buffer filled (networks + the exploration block once), (2) the save
at a stop, ``--new`` transitions after the previous save (default 1,500 and 20,000: 5 minutes at 5 and at 66.7
env steps/s), (3) restoring from the incremental checkpoint into a fresh agent (bit-equal check), (4) the full
single-file save and load of the same state. Prints seconds and bytes; ``--json`` writes them.

    python bench/bench_checkpoint.py [--presets s3,ed] [--new 1500,20000] [--json bench/results/checkpoint_cpu.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _machine import cpu_model  # noqa: E402
from symphony_ros.core.agent import SymphonyAgent  # noqa: E402
from symphony_ros.core.checkpoint import AgentCheckpoints, load_checkpoint, save_checkpoint  # noqa: E402
from symphony_ros.core.config import load_preset  # noqa: E402

OBS, ACT = 348, 17


def _transitions(agent: SymphonyAgent, rng: np.random.Generator, n: int) -> None:
    """``n`` synthetic Humanoid-size transitions through the storage and loop rules (no updates: not timed here)."""
    rules = agent.storage_rules
    for _ in range(n):
        agent.observe(rules.check(rng.standard_normal(OBS, dtype=np.float32), rng.uniform(-1, 1, ACT),
                                  float(rng.uniform(0, 5)), rng.standard_normal(OBS, dtype=np.float32),
                                  bool(rng.random() < 0.01)))


def _mib(n: int) -> float:
    return n / 2**20


def bench(preset: str, news: list[int], root: Path) -> dict:
    cfg = load_preset(preset)
    rng = np.random.default_rng(0)
    agent = SymphonyAgent(OBS, ACT, cfg, device="cpu", seed=0)
    t0 = time.perf_counter()
    _transitions(agent, rng, cfg.n_exp + 10)
    fill_s = time.perf_counter() - t0
    out: dict = dict(preset=preset, slots=agent.buffer.capacity, buffer_mib=_mib(agent.buffer.nbytes()),
                     fill_s=fill_s)
    d = root / preset
    ck = AgentCheckpoints(d)

    def save(step: int) -> dict:
        ck.save_agent(step, dict(kind="training", agent=agent.state_dict(include_buffer=False)), agent.buffer)
        return dict(ck.last_save)

    step = cfg.n_exp + 10
    first = save(step)
    out["first_save"] = dict(seconds=first["seconds"], buffer_mib=_mib(first["buffer_bytes"]),
                             state_mib=_mib(first["state_bytes"]))
    out["stop_saves"] = []
    for n in news:
        _transitions(agent, rng, n)
        step += n
        s = save(step)
        out["stop_saves"].append(dict(new_transitions=n, seconds=s["seconds"], buffer_mib=_mib(s["buffer_bytes"]),
                                      state_mib=_mib(s["state_bytes"])))
    out["files_on_disk_mib"] = _mib(sum(p.stat().st_size for p in d.rglob("*") if p.is_file()))
    fresh = SymphonyAgent(OBS, ACT, cfg, device="cpu", seed=1)
    t0 = time.perf_counter()
    AgentCheckpoints(d).load_agent_latest(kind="training", validate=lambda p: None, buffer=fresh.buffer,
                                          apply=lambda path, p: fresh.load_state_dict(p["agent"], load_buffer=False))
    out["restore_s"] = time.perf_counter() - t0
    out["restore_bit_equal"] = bool(torch.equal(fresh.buffer.packed(), agent.buffer.packed())
                                    and np.array_equal(fresh.buffer.terminal, agent.buffer.terminal)
                                    and fresh.buffer.meta() == agent.buffer.meta())
    fresh = None   # free its buffer before the full-file comparison
    full = d / "full.pt"
    t0 = time.perf_counter()
    save_checkpoint(full, dict(kind="training", agent=agent.state_dict(include_buffer=True)))
    out["full_save"] = dict(seconds=time.perf_counter() - t0, mib=_mib(full.stat().st_size))
    t0 = time.perf_counter()
    load_checkpoint(full)
    out["full_load_s"] = time.perf_counter() - t0
    shutil.rmtree(d)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="s3,ed")
    ap.add_argument("--new", default="1500,20000", help="transitions between the last two saves (comma list)")
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary folder on this disk)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_ckpt_", dir=str(ROOT)))
    res = dict(machine=cpu_model(), torch=torch.__version__, results=[])
    try:
        for preset in args.presets.split(","):
            r = bench(preset, [int(x) for x in args.new.split(",")], root)
            res["results"].append(r)
            print(f"{preset}: {r['slots']:,} slots ({r['buffer_mib']:.0f} MiB)")
            f = r["first_save"]
            print(f"  first save after the fill: {f['seconds']:.2f} s, buffer {f['buffer_mib']:.1f} MiB + state "
                  f"{f['state_mib']:.1f} MiB")
            for s in r["stop_saves"]:
                print(f"  save at stop, {s['new_transitions']:,} new transitions: {s['seconds']:.2f} s, buffer "
                      f"{s['buffer_mib']:.1f} MiB + state {s['state_mib']:.1f} MiB")
            print(f"  restore: {r['restore_s']:.2f} s (bit-equal: {r['restore_bit_equal']}); files on disk "
                  f"{r['files_on_disk_mib']:.0f} MiB")
            print(f"  one full file (before): save {r['full_save']['seconds']:.2f} s, {r['full_save']['mib']:.0f} "
                  f"MiB; load {r['full_load_s']:.2f} s")
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0 if all(r["restore_bit_equal"] for r in res["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
