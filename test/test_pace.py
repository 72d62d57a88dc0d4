"""The start-up verdicts on rates (no timing asserted: the measurements are fed in)."""
import numpy as np

from symphony_ros.control.pace import command_path_ms, rate_verdict
from symphony_ros.learner.pace import PaceCheck


def test_rate_verdict_names_the_rate_it_can_hold():
    ok, line = rate_verdict(50.0, 0.2, 0.5)
    assert ok and line.startswith("holds 50 Hz") and "10.0 ms budget" in line and "~1000 Hz" in line
    ok, line = rate_verdict(200.0, 2.0, 4.0)                     # budget 2.5 ms at 200 Hz
    assert not ok and line.startswith("CANNOT HOLD 200 Hz") and "holds ~125 Hz" in line and "\n" not in line


def test_command_path_ms_calls_the_path():
    calls = []
    p50, p99 = command_path_ms(lambda x: calls.append(x.shape), 7, calls=30, warmup=5)
    assert len(calls) == 35 and calls[0] == (7,) and 0 <= p50 <= p99


def test_pace_check_says_once_per_verdict():
    pc = PaceCheck(2.0, settle_s=10.0)
    assert pc.sample(0.0, 0, 0, learning=False) is None
    assert pc.sample(1.0, 100, 0, learning=True) is None              # window starts
    assert pc.sample(5.0, 300, 100, learning=True) is None            # not settled
    ok, line = pc.sample(11.0, 600, 300, learning=True)               # 50 tr/s needs 100 up/s, does 30
    assert not ok and "CANNOT KEEP UP: 50 transitions/s x UTD 2 needs 100 updates/s, this learner does 30" in line
    assert "holds UTD 0.60" in line and "for 15 transitions/s" in line
    assert pc.sample(21.0, 1100, 600, learning=True) is None          # same verdict: silent
    ok, line = pc.sample(31.0, 1600, 1700, learning=True)             # 50 tr/s, 110 up/s: keeps up now
    assert ok and line.startswith("keeping up")
    assert np.allclose(pc.last, (50.0, 110.0))


def test_a_verdict_that_changes_is_logged_at_its_new_severity():
    """rclpy ties a call site to its first severity (a second one raises ValueError): a learner whose verdict went
    from "keeping up" to "CANNOT KEEP UP" died of it. Both verdict paths log through per-severity call sites."""
    import pytest
    rclpy_logging = pytest.importorskip("rclpy.logging", reason="rclpy not installed (ROS 2 optional)")
    from symphony_ros.control.actor_logic import Outputs
    from symphony_ros.nodes.common import log_at
    logger = rclpy_logging.get_logger("test_pace_verdicts")
    for level in ("info", "warning", "info", "error", "debug", "warning"):
        log_at(logger, level, f"verdict at {level}")
    out = Outputs(command=None, transition=None, command_listeners=None, bad=None, info=logger.info,
                  warning=logger.warning, error=logger.error)
    for ok in (True, False, True, False):
        out.info_or_warning(ok, f"holds: {ok}")


def test_cost_line_says_once_what_the_paper_run_would_take_here():
    """The first command's one-line cost estimate (times are fed in: nothing is timed)."""
    from symphony_ros.training.embedded import COST_WINDOW_S, PAPER_STEPS_TO_5000, CostLine
    line = CostLine("Humanoid-v5", "cpu")
    assert line.sample(0.0, 100, learning=False) is None                 # exploration: nothing said
    assert line.sample(1.0, 200, learning=True) is None                  # the window starts
    assert line.sample(1.0 + COST_WINDOW_S / 2, 400, learning=True) is None
    said = line.sample(1.0 + COST_WINDOW_S, 200 + int(5 * COST_WINDOW_S), learning=True)   # 5 learning steps/s
    hours = PAPER_STEPS_TO_5000 / 5 / 3600
    assert said.startswith("this machine (cpu): 5.0 learning steps/s") and f"~{hours:.0f} h" in said
    assert "symphony-ros demo" in said and "\n" not in said
    assert line.sample(500.0, 9999, learning=True) is None               # once
    other = CostLine("Hopper-v5", "cuda")
    other.sample(0.0, 0, learning=True)
    said = other.sample(COST_WINDOW_S, int(30 * COST_WINDOW_S), learning=True)
    assert said == "this machine (cuda): 30.0 learning steps/s"         # no Humanoid estimate, no demo pointer
