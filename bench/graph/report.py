"""The printed report of bench_graph (the JSON file holds every figure, see bench_graph.py --json)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def table(hdr: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    print("   " + "  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    for r in rows:
        print("   " + "  ".join(r[i].ljust(w[i]) for i in range(len(hdr))))


def _items(items: dict[str, dict[str, float]], k: int, width: int = 9) -> None:
    for name, v in list(items.items())[:k]:
        print(f"     {v['ms_per_step']:{width}.3f} ms/step  {v['calls_per_step']:6.2f} calls/step  {name}")


def report_cost(cost: list[dict[str, Any]]) -> None:
    print("\n1. Cost per environment step while learning (lockstep, cpu, interleaved chunks)")
    hdr = ("preset", "thr", "G", "steps", "headless s/step", "graph s/step", "overhead", "min-chunk ovh",
           "chunk ratio med [min, max]", "upd/step h|g", "load 1m start/end")
    table(hdr, [(c["preset"], str(c["threads"]), str(c["G"]), str(c["steps"]), f"{c['headless_s_per_step']:.4f}",
                 f"{c['graph_s_per_step']:.4f}", f"{c['overhead_pct']:+.1f} %", f"{c['min_chunk_overhead_pct']:+.1f} %",
                 f"{c['chunk_ratio_median']:.3f} [{c['chunk_ratio_min']:.3f}, {c['chunk_ratio_max']:.3f}]",
                 f"{c['headless_updates_per_step']:.2f}|{c['graph_updates_per_step']:.2f}",
                 f"{c['loadavg_start'][0]:.2f}/{c['loadavg_end'][0]:.2f}") for c in cost])
    print("   CPU per step (ms): headless process | graph process, of it the executor (main) thread:")
    for c in cost:
        v = c["variants"]["as_is"]
        e = v["executor_entities"]
        print(f"     {c['preset']} thr {c['threads']}: {c['headless_cpu_ms_per_step']:.1f} | "
              f"{v['process_cpu_ms_per_step']:.1f}, main thread {v['main_thread_cpu_ms_per_step']:.1f} "
              f"({v['spin_once_calls_per_step']:.1f} spin_once calls/step over {sum(e.values())} wait-set entities: "
              f"{', '.join(f'{k} {x}' for k, x in e.items() if x)}); DDS weight copies ignored by the in-process "
              f"actor: {v['counters']['weights_ignored']}")
    wi = [c for c in cost if len(c["variants"]) > 1]
    if wi:
        print("\n   what-if (diagnostic graph variants, NOT the package as shipped; same interleaved run):")
        rows = []
        for c in wi:
            rows.append((c["preset"], str(c["threads"]), "headless", f"{c['headless_s_per_step']:.4f}", "", "", "",
                         ""))
            for name, v in c["variants"].items():
                rows.append((c["preset"], str(c["threads"]), name, f"{v['s_per_step']:.4f}",
                             f"{v['overhead_pct']:+.1f} %", f"{v['min_chunk_overhead_pct']:+.1f} %",
                             f"{v['chunk_ratio_median']:.3f}", f"{v['main_thread_cpu_ms_per_step']:.1f}"))
        table(("preset", "thr", "variant", "s/step", "overhead", "min-chunk ovh", "chunk ratio med",
               "main-thread CPU ms/step"), rows)
    for c in cost:
        b = c.get("breakdown")
        if b:
            print(f"\n   where a step goes ({c['preset']}, {c['threads']} thr; profiled pass of {b['steps']} steps, a "
                  f"separate graph; {b['wall_ms_per_step']:.1f} ms/step wall with the profiler; inclusive times, "
                  f"nested calls also counted in their callers; [thread]):")
            _items(b["items"], 22)
            print(f"   the headless trainer, profiled ({b['headless_wall_ms_per_step']:.1f} ms/step wall):")
            _items(b["headless_items"], 8)


def report_latency(L: dict[str, Any]) -> None:
    print(f"\n2. env_step -> joint_commands round trip (ED actor, hidden {L['actor_hidden']}, obs {L['obs']}, "
          f"act {L['act']}, async, {L['steps']} steps after {L['warmup']} warm-up; real Humanoid-v5 obs)")
    rows = []
    for key, label in (("cross_process", "actor in its own process"),
                       ("cross_process_with_transitions", "  same, Transitions subscribed too"),
                       ("split_inbound", "    env_step pub -> actor callback"),
                       ("split_rest", "    actor callback -> command here"),
                       ("whatif_cross_process_events_actor", "what-if: actor process on EventsExecutor"),
                       ("in_process", "actor in this process"),
                       ("actor_policy_act", "ActorPolicy.act only (1 thr)"),
                       ("actor_forward", "actor forward only (1 thr)")):
        s = L.get(key)
        if s:
            rows.append((label, str(s["n"]), f"{s['p50_ms']:.3f}", f"{s['p90_ms']:.3f}", f"{s['p99_ms']:.3f}",
                         f"{s['max_ms']:.3f}", f"{s['mean_ms']:.3f}"))
    table(("where", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"), rows)
    if L.get("in_process_breakdown"):
        print(f"   in-process actor, per answered env_step (profiled pass, "
              f"{L['in_process_breakdown_wall_ms_per_step']:.3f} ms/step wall with the profiler; inclusive ms):")
        _items(L["in_process_breakdown"], 14, width=7)
    if L.get("cross_process"):
        p99 = L["cross_process"]["p99_ms"]
        print(f"   target p99 < 2 ms across processes: {'MET' if p99 < 2.0 else 'NOT MET'} ({p99:.3f} ms)")


def report_ingest(ing: dict[str, Any], whatif: bool) -> None:
    if whatif:
        print("\n   what-if (diagnostic, NOT the package as shipped): the same LearnerNode spun by "
              "rclpy.experimental.EventsExecutor")
    else:
        print(f"\n3. Learner ingest ({ing['preset']} learner process, async, exploration phase: stores and "
              f"acknowledges only; publisher process, Humanoid-size Transitions, {ing['seconds']:g} s per run; "
              f"transitions QoS reliable, keep last {ing['transitions_qos_depth']})")
    rows = []
    for key in ("blast", "paced"):
        r = ing[key]
        label = f"paced at {r['target_rate']:.0f}/s" if key == "paced" else "as fast as possible"
        rows.append((label, str(r["sent"]), _fmt(r["publish_rate"], 0), str(r["received"]), str(r["stored"]),
                     str(r["lost"]), _fmt(r["received_rate"], 0), _fmt(r["stored_rate"], 0),
                     _fmt(r["received_rate_while_publishing"], 0), _fmt(r["drain_rate_after_publishing"], 0)))
    table(("publisher", "sent", "sent /s", "received", "stored", "lost", "recv /s (all in)", "stored /s",
           "recv /s while publishing", "recv /s draining"), rows)
    for key in ("blast", "paced"):
        r = ing[key]
        ok = r["lost"] == 0 and r["stored"] == r["sent"]
        print(f"   {key}: none lost: {'YES' if ok else 'NO (' + str(r['lost']) + ' of ' + str(r['sent']) + ')'}"
              + (f"; publish() refused {r['publish_refused']} times ('{r['publish_refused_error']}'), retried"
                 if r.get("publish_refused") else ""))


def report(res: dict[str, Any]) -> None:
    m = res["machine"]
    print()
    print(f"bench_graph: CPU {m['cpu_model']} x {m['cpu_count']}, torch {m['torch_version']}, python {m['python']}, "
          f"rclpy wheel {m.get('rclpy_wheel', '?')}, private netns {m['private_netns']}")
    la0, la1 = res["loadavg_start"], res["loadavg_end"]
    print(f"load average (1/5/15 min): start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}, end "
          f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f}  (shared machine: compare ratios from the same run)")
    if res.get("cost"):
        report_cost(res["cost"])
    if res.get("latency"):
        report_latency(res["latency"])
    if res.get("ingest"):
        report_ingest(res["ingest"], whatif=False)
    if res.get("ingest_whatif_events"):
        report_ingest(res["ingest_whatif_events"], whatif=True)


def write_json(res: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=str))
    print(f"JSON: {path}")
