#!/usr/bin/env python3
"""Benchmark of the ROS 2 training graph against the headless trainer (see bench/README.md, "bench_graph.py").

Three measurements, all in one run; each is described in its module under bench/graph/:

1. cost    (graph/cost.py) seconds per environment step while learning: HeadlessTrainer against the embedded
           lockstep graph, same preset, threads and process, interleaved rotating chunks; overhead and min-chunk
           ratios, CPU time per step, spin_once calls and wait-set size. ``--breakdown``: where a step goes (a
           profiled separate pass). ``--whatif``: EventsExecutor / no DDS weight copy to the in-process actor / both.
2. latency (graph/latency.py) env_step -> joint_commands round trip to an ED actor in its own process (p50/p90/p99/
           max), split at the Transition stamp; the in-process arrangement; the bare forward.
3. ingest  (graph/ingest.py) learner ingest from a publisher process: as fast as possible, then paced at 80 % of the
           learner's rate; received == sent.

Network hygiene: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a ROS_DOMAIN_ID of its own (unless set), and, when run as
root outside a private network namespace, the script re-executes itself under ``unshare -n`` (loopback only); every
node process it starts inherits all three.

Usage:
    python bench/bench_graph.py [--quick] [--json PATH] [--sections cost,latency,ingest] [--presets s3,ed]
                                [--threads 1,2] [--steps 60] [--warmup 10] [--chunk 5] [--latency-steps 1000]
                                [--ingest-seconds 5] [--breakdown] [--whatif]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent):                 # bench/ (the graph package), the repository (symphony_ros)
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from graph import common  # noqa: E402

common.configure_environment()


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny networks, few steps (< 2 min)")
    ap.add_argument("--sections", default="cost,latency,ingest")
    ap.add_argument("--presets", default="s3,ed", help="presets of the cost section")
    ap.add_argument("--threads", default="1,2", help="torch threads of the cost section (comma list)")
    ap.add_argument("--steps", type=int, default=60, help="timed learning steps per side")
    ap.add_argument("--warmup", type=int, default=10, help="learning steps before timing")
    ap.add_argument("--chunk", type=int, default=5, help="steps per interleaved chunk")
    ap.add_argument("--n-exp", type=int, default=500, help="exploration steps (small buffer for timing)")
    ap.add_argument("--buffer-times", type=int, default=4)
    ap.add_argument("--latency-steps", type=int, default=1000)
    ap.add_argument("--latency-warmup", type=int, default=200, help="answered env_steps before timing, per pass")
    ap.add_argument("--ingest-seconds", type=float, default=5.0)
    ap.add_argument("--breakdown", action="store_true", help="also profile where a step goes (separate pass)")
    ap.add_argument("--whatif", action="store_true", help="also time diagnostic graph variants (EventsExecutor, no "
                    "DDS weight copy to the in-process actor, both) at the first --threads value")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.chunk = min(args.steps, 6), min(args.warmup, 2), min(args.chunk, 3)
        args.n_exp, args.latency_steps = min(args.n_exp, 60), min(args.latency_steps, 200)
        args.ingest_seconds, args.latency_warmup = min(args.ingest_seconds, 1.5), min(args.latency_warmup, 10)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    from graph.cost import bench_cost
    from graph.ingest import bench_ingest
    from graph.latency import bench_latency
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    threads = [int(t) for t in args.threads.split(",") if t.strip()][:1 if args.quick else None]
    small = dict(hidden_dim=32, heads_per_critic=8, batch_size=16) if args.quick else {}
    res: dict[str, Any] = dict(loadavg_start=common.loadavg(), machine=common.machine_info(), args={
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    la = res["loadavg_start"]
    print(f"bench_graph: load average {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}, ROS_DOMAIN_ID "
          f"{os.environ['ROS_DOMAIN_ID']}, private netns {common.private_netns()}", flush=True)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_graph_") as d:
        tmp = Path(d)
        if "cost" in sections:
            res["cost"] = []
            for th in threads:
                for p in presets:
                    ov = dict(small, n_exp=args.n_exp, buffer_times=args.buffer_times, eval_episodes=0)
                    print(f"[cost] {p}, {th} torch thread(s) ...", flush=True)
                    c = bench_cost(p, th, args.steps, args.warmup, args.chunk, ov, args.breakdown, tmp,
                                   whatif=args.whatif and th == threads[0])
                    print(f"[cost] {p} thr {th}: headless {c['headless_s_per_step']:.4f} s/step, graph "
                          f"{c['graph_s_per_step']:.4f} s/step, overhead {c['overhead_pct']:+.1f} %", flush=True)
                    res["cost"].append(c)
        if "latency" in sections:
            print("[latency] ...", flush=True)
            res["latency"] = bench_latency(args.latency_steps, args.latency_warmup, tmp,
                                           hidden=32 if args.quick else None, whatif=args.whatif)
        if "ingest" in sections:
            print("[ingest] ...", flush=True)
            res["ingest"] = bench_ingest(args.ingest_seconds, tmp, quick=args.quick)
            if args.whatif:
                print("[ingest] what-if: learner on EventsExecutor ...", flush=True)
                res["ingest_whatif_events"] = bench_ingest(args.ingest_seconds, tmp, quick=args.quick,
                                                           events_executor=True)
    res["loadavg_end"] = common.loadavg()
    res["wall_s"] = time.perf_counter() - t_all
    return res


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_blast":                 # helper process of the ingest section
        from graph.ingest import blast_main
        return blast_main(argv[1:])
    if argv and argv[0] == "_node_events":           # what-if harness: a package node on EventsExecutor
        return common.events_main(argv[1:])
    args = parse_args(argv)
    common.ensure_private_netns()
    import torch
    from graph.report import report, write_json
    res = run(args)
    torch.set_num_threads(os.cpu_count() or 1)
    report(res)
    print(f"\nwall time {res['wall_s']:.1f} s")
    if args.json:
        write_json(res, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
