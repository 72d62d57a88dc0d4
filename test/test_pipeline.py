"""The safety pipeline (control/pipeline.py), stage by stage and together: every output inside the limits and finite
whatever the input; rate limit, filters, soft start and the safe ramp do what they say; bad configurations are one
clear error."""
import math

import numpy as np
import pytest

from symphony_ros.control.pipeline import CommandPipeline, LowPass, OneEuro, RateLimit, SafeRamp, SoftStart
from symphony_ros.control.safety import SafetyLayer

LO, HI, SAFE = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.5, 1.0])


def _layer():
    return SafetyLayer(LO, HI, SAFE)


def test_rate_limit_bounds_every_change():
    r = RateLimit(np.array([0.1, 0.2, 0.3]))
    assert np.array_equal(r(np.array([1.0, 1.0, 1.0])), [1.0, 1.0, 1.0])      # the first command is free
    out = r(np.array([-1.0, 2.0, 1.05]))
    np.testing.assert_allclose(out, [0.9, 1.2, 1.05])
    with pytest.raises(ValueError, match="rate limits"):
        RateLimit(np.array([0.1, 0.0, 1.0]))


def test_lowpass_and_one_euro_filters():
    lp = LowPass(cutoff_hz=2.0, period_s=0.01)
    alpha = 1 - math.exp(-2 * math.pi * 2.0 * 0.01)
    lp(np.zeros(1))
    np.testing.assert_allclose(lp(np.ones(1)), [alpha])
    x = np.array([math.sin(2 * math.pi * 40 * k * 0.01) for k in range(200)])   # 40 Hz, far above 2 Hz
    lp2 = LowPass(2.0, 0.01)
    y = np.array([lp2(np.array([v]))[0] for v in x])
    assert np.abs(y[50:]).max() < 0.1 * np.abs(x).max()
    oe = OneEuro(1.0, 0.5, 0.01)
    steady = [oe(np.array([0.3]))[0] for _ in range(50)]
    assert steady[-1] == pytest.approx(0.3)
    jump = [oe(np.array([1.3]))[0] for _ in range(100)]
    assert 0.3 < jump[0] < 1.3 and jump[-1] == pytest.approx(1.3, abs=1e-3)      # follows, with a little lag
    for bad in (dict(cutoff_hz=0.0, period_s=0.01), dict(cutoff_hz=-1.0, period_s=0.01)):
        with pytest.raises(ValueError):
            LowPass(**bad)
    with pytest.raises(ValueError):
        OneEuro(1.0, -1.0, 0.01)


def test_soft_start_and_safe_ramp_are_linear_and_end():
    s = SoftStart(1.0)
    s.begin(np.zeros(3), now=10.0)
    np.testing.assert_allclose(s(np.full(3, 2.0), 10.25), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(s(np.full(3, 2.0), 11.0), [2.0, 2.0, 2.0])
    assert s.start is None                                                      # finished
    r = SafeRamp(np.array([1.0, -2.0]), np.array([0.0, 0.0]), 2.0, now=0.0)
    np.testing.assert_allclose(r(1.0), [0.5, -1.0])
    assert not r.done(1.9) and r.done(2.0)
    np.testing.assert_allclose(r(5.0), [0.0, 0.0])
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            SoftStart(bad)
        with pytest.raises(ValueError):
            SafeRamp(np.zeros(1), np.zeros(1), bad, 0.0)


def test_pipeline_output_is_always_finite_inside_the_limits_and_counts_its_stages():
    rng = np.random.default_rng(0)
    p = CommandPipeline(_layer(), period_s=0.01, max_delta=np.array([0.05, 0.05, 0.05]), smoothing="lowpass",
                        cutoff_hz=5.0, soft_start_s=0.2)
    p.reset(now=0.0, start=SAFE)
    for k in range(500):
        kind = k % 4
        desired = (rng.normal(0, 10, 3) if kind == 0 else np.array([np.nan, np.inf, -np.inf]) if kind == 1
                   else rng.normal(0, 1e300, 3) if kind == 2 else rng.uniform(LO, HI))
        out = p(desired, now=k * 0.01).command
        assert out.shape == (3,) and np.isfinite(out).all() and (out >= LO).all() and (out <= HI).all()
    sh = p.shares()
    assert set(sh) == {"limits", "rate_limit", "smoothing", "soft_start"}
    assert sh["limits"] > 0.5 and sh["rate_limit"] > 0.3 and sh["smoothing"] > 0.3 and 0 < sh["soft_start"] < 0.1


def test_pipeline_without_stages_passes_an_inside_command_unchanged():
    p = CommandPipeline(_layer(), period_s=0.02)
    x = np.array([0.3, -1.5, 2.9])
    out = p(x, 0.0)
    assert np.array_equal(out.command, x) and not any(out.changed.values())
    with pytest.raises(ValueError, match="smoothing"):
        CommandPipeline(_layer(), period_s=0.02, smoothing="magic")
    with pytest.raises(ValueError, match="period"):
        CommandPipeline(_layer(), period_s=-0.02)
