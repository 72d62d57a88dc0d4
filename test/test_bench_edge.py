"""bench/bench_edge.py keeps working: a --quick run (actor, learner and driver processes over real DDS) writes a JSON
with every figure present and sane (finite, counts >= 0, consistent with each other), and its node processes end
cleanly, also when the bench itself is interrupted. No timing is asserted: the figures belong to the bench."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip extra 'ros')")
pytest.importorskip("symphony_ros_interfaces.msg", reason="symphony_ros_interfaces not built")

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "bench_edge.py"


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", MUJOCO_GL="disable")


def _finite(x, lo=-math.inf):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= lo


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_bench_edge_quick_writes_sane_figures(tmp_path):
    out, txt, logs = tmp_path / "edge.json", tmp_path / "edge.txt", tmp_path / "logs"
    r = subprocess.run([sys.executable, str(BENCH), "--quick", "--rates", "50,200", "--duration", "1.5",
                        "--warmup", "0.5", "--json", str(out), "--txt", str(txt), "--logs", str(logs)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT, env=_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert "50 Hz" in txt.read_text() and "200 Hz" in txt.read_text()

    m, s = res["machine"], res["setup"]
    assert m["cores_available"] >= 1 and m["learner_torch_threads"] >= 1
    assert len(res["loadavg_start"]) == 3 and all(_finite(x, 0) for x in res["loadavg_start"] + res["loadavg_end"])
    assert s["preset"] == "ed" and s["buffer_dtype"] == "float16" and s["buffer_preallocated"] is True
    assert s["buffer_bytes"] == s["buffer_capacity"] * s["buffer_row_bytes"]
    assert s["buffer_capacity"] == res["learner_configured"]["buffer_capacity"]
    for mem in (res["learner_configured"], res["learner_after_fill"], res["learner_end"]):
        assert _finite(mem["rss_mib"], 1) and mem["hwm_mib"] >= mem["rss_mib"] - 1e-6
    assert res["fill"]["learner_stored"] >= s["n_exp"]                     # the learner learned before the rates
    assert res["learner_end"]["updates"] > 0 and res["learner_end"]["healthy"] is True

    assert [x["rate_hz"] for x in res["rates"]] == [50.0, 200.0]
    for x in res["rates"]:
        n = x["env_steps"]
        assert n > 0 and 0 <= x["final_steps"] <= n
        lat = x["latency"]
        assert 1 <= lat["n"] <= n
        assert all(_finite(lat[k], 0) for k in ("p50_ms", "p99_ms", "max_ms", "mean_ms"))
        assert lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        mi = x["missed"]
        assert mi["count"] == mi["late"] + mi["unanswered"] and 0 <= mi["count"] <= n
        assert mi["unanswered"] == n - lat["n"]
        assert sum(x["matching"].values()) == x["commands_in_window"]
        assert all(v >= 0 for v in x["matching"].values())
        dr = x["driver"]
        assert dr["late_periods"] >= 0 and dr["skipped_periods"] >= 0 and _finite(dr["lag"]["p99_ms"])
        for j in (x["jitter"]["commands"], x["jitter"]["env_steps"]):
            assert _finite(j["std_ms"], 0) and _finite(j["p99_abs_ms"], 0) and j["p99_abs_ms"] <= j["max_abs_ms"]
        le = x["learner"]
        assert le["learning"] is True and _finite(le["updates_per_s"], 0) and le["status_samples"] >= 2
        assert le["needed_updates_per_s"] == x["rate_hz"] * s["updates_per_step_G"]
        assert _finite(le["share_of_needed"], 0) and _finite(le["stored_per_s"], 0)
        assert all(_finite(v, 0) for v in x["cpu_cores"].values())
        for who in ("actor", "learner", "driver"):
            assert _finite(x["rss_mib"][who]["rss_mib"], 1)
        assert all(_finite(v, 0) for v in x["loadavg_before"] + x["loadavg_after"])
        assert all(x["actor"][k] >= 0 for k in ("steps_acted", "commands_sent", "safe_commands_sent",
                                                 "watchdog_trips", "bad_env_steps"))
        assert x["actor"]["bad_env_steps"] == 0
        # every Transition the actor sent reached the learner
        assert x["transitions"]["learner_received"] == x["transitions"]["actor_sent"] > 0
        assert x["actor_shutdown"] == dict(x["actor_shutdown"], signal="SIGINT", exit_code=0)
    assert res["learner_shutdown"]["signal"] == "SIGINT" and res["learner_shutdown"]["exit_code"] == 0


def test_bench_edge_interrupted_stops_its_node_processes(tmp_path):
    logs = tmp_path / "logs"
    p = subprocess.Popen([sys.executable, str(BENCH), "--quick", "--rates", "50", "--logs", str(logs)], cwd=ROOT,
                         env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (logs / "actor_fill.pid").exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (logs / "actor_fill.pid").exists(), "the bench never started its fill actor"
        pids = [int((logs / f).read_text()) for f in ("learner.pid", "actor_fill.pid")]
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert all(_gone(pid) for pid in pids)
