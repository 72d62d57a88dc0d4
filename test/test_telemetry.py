"""symphony_ros.control.telemetry: the shared command metrics against hand-computed values, and batch == streaming."""
import math

import numpy as np
import pytest

from symphony_ros.control.telemetry import CommandTelemetry, command_metrics


def _stream(a, low, high, starts, **kw):
    tel = CommandTelemetry(low, high, **kw)
    for row, s in zip(a, starts):
        tel.add(row, new_episode=bool(s))
    return tel.summary()


def test_constant_signal_has_no_motion_no_spectrum_and_its_reach():
    a = np.full((50, 2), [0.5, -0.25])
    m = command_metrics(a, [-1, -1], [1, 1])
    np.testing.assert_array_equal(m.saturation, [0, 0])
    np.testing.assert_array_equal(m.abs_delta, [0, 0])
    np.testing.assert_array_equal(m.sign_flips, [0, 0])
    np.testing.assert_allclose(m.reach, [0.5, 0.25])
    assert np.isnan(m.hf_share).all()                  # no power above 0 Hz: undefined, not 0
    assert m.count == 50 and m.pairs == 49 and m.segments == 1


def test_plus_minus_one_alternation_is_all_high_frequency_and_saturated():
    a = np.tile([[1.0], [-1.0]], (32, 1))              # 64 commands, bounds [-1, 1]
    m = command_metrics(a, -1.0, 1.0)
    assert m.saturation[0] == 1.0
    assert m.abs_delta[0] == pytest.approx(1.0)        # |Δa| = 2 per step over a range of 2
    assert m.abs_delta_units[0] == pytest.approx(2.0)
    assert m.hf_share[0] == pytest.approx(1.0)         # all power at Nyquist
    assert m.sign_flips[0] == 1.0 and m.reach[0] == 1.0


def test_slow_sine_has_no_high_frequency_power():
    t = np.arange(400)
    a = (0.5 * np.sin(2 * np.pi * t / 100.0))[:, None]    # 4 whole periods, f = 0.01 of the control rate
    m = command_metrics(a, -1, 1)
    assert m.hf_share[0] == pytest.approx(0.0, abs=1e-12)
    assert m.saturation[0] == 0.0
    assert m.reach[0] == pytest.approx(0.5, rel=1e-4)
    # the samples hit the peaks, so 4 periods travel 4·4·A = 8; the 399 pairs miss the last step 0.5·sin(2π/100)
    assert m.abs_delta_units[0] == pytest.approx((8 - 0.5 * np.sin(2 * np.pi / 100)) / 399, rel=1e-9)
    assert m.abs_delta[0] == pytest.approx(m.abs_delta_units[0] / 2)


def test_saturation_counts_the_band_edge_and_beyond():
    # bounds [0, 10]: 5% of the range = 0.5, so a >= 9.5 or a <= 0.5 is saturated
    a = np.array([[9.5], [9.49], [0.5], [0.51], [10.3], [-1.0], [5.0], [5.0]])
    m = command_metrics(a, 0.0, 10.0)
    assert m.saturation[0] == pytest.approx(4 / 8)
    assert m.reach[0] == pytest.approx((5 - -1.0) / 5)       # -1 is 6 from the centre 5: beyond the bound, > 1


def test_delta_is_relative_to_the_range_and_ignores_episode_boundaries():
    a = np.array([[0.0], [1.0], [0.0], [2.0], [1.0]])
    starts = np.array([True, False, False, True, False])
    m = command_metrics(a, -2.0, 2.0, starts)
    # pairs inside episodes: 0→1, 1→0, 2→1 (the 0→2 jump crosses an episode start)
    assert m.pairs == 3
    assert m.abs_delta_units[0] == pytest.approx(1.0)
    assert m.abs_delta[0] == pytest.approx(0.25)
    assert m.sign_flips[0] == 0.0


def test_short_segments_do_not_count_for_the_spectrum():
    a = np.tile([[1.0], [-1.0]], (10, 1))                   # 20 commands
    starts = np.zeros(20, bool)
    starts[[0, 7]] = True                                    # a 7-command and a 13-command episode
    m = command_metrics(a, -1, 1, starts)
    assert m.segments == 1
    x = a[7:, 0] - a[7:, 0].mean()
    p = np.abs(np.fft.rfft(x)) ** 2
    k = np.arange(p.size) / 13
    assert m.hf_share[0] == pytest.approx(p[k > 0.25].sum() / p[k > 0].sum())


def test_batch_equals_streaming_with_episodes_cuts_and_nonfinite_rows():
    rng = np.random.default_rng(3)
    lengths = [40, 3, 100, 9, 57, 1, 33]
    a = np.concatenate([np.cumsum(rng.normal(0, 0.2, (n, 3)), axis=0) for n in lengths])
    a = np.clip(a, -1.2, 1.3)
    starts = np.zeros(len(a), bool)
    starts[np.r_[0, np.cumsum(lengths)[:-1]]] = True
    a[5, 1] = np.nan                                         # skipped, counted
    first_of_third = int(np.cumsum(lengths)[1])
    a[first_of_third] = np.inf                               # an episode start on a bad row moves to the next row
    low, high = np.array([-1.0, -0.5, -2.0]), np.array([1.0, 1.5, 2.0])
    for max_segment in (16, 4096):
        b = command_metrics(a, low, high, starts, max_segment=max_segment)
        s = _stream(a, low, high, starts, max_segment=max_segment)
        assert (b.count, b.nonfinite, b.pairs, b.segments) == (s.count, s.nonfinite, s.pairs, s.segments)
        for key in ("saturation", "abs_delta", "abs_delta_units", "hf_share", "reach", "sign_flips"):
            np.testing.assert_allclose(getattr(s, key), getattr(b, key), rtol=1e-9, atol=1e-12, err_msg=key)
    assert b.nonfinite == 2 and b.count == len(a) - 2
    assert b.pairs == sum(n - 1 for n in lengths) - 2       # one pair lost per skipped row


def test_streaming_summary_includes_the_open_segment_and_reset_forgets():
    tel = CommandTelemetry([-1], [1])
    for i in range(16):
        tel.add([1.0 if i % 2 else -1.0], new_episode=(i == 0))
    m = tel.summary()
    assert m.count == 16 and m.segments == 1 and m.hf_share[0] == pytest.approx(1.0)
    assert tel.summary().count == 16                          # summary() does not close or consume
    tel.reset()
    m = tel.summary()
    assert m.count == 0 and math.isnan(m.saturation[0]) and math.isnan(m.hf_share[0])
    assert math.isnan(m.means()["reach"])


def test_means_and_dict_are_json_friendly():
    m = command_metrics(np.full((4, 2), 0.0), -1, 1)
    d = m.to_dict()
    assert d["hf_share"] == [None, None] and d["hf_share_mean"] is None
    assert d["saturation_mean"] == 0.0 and d["count"] == 4


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="high > low"):
        CommandTelemetry([1.0], [1.0])
    with pytest.raises(ValueError, match="2 joints"):
        command_metrics(np.zeros((3, 3)), [0, 0], [1, 1])
    tel = CommandTelemetry([-1, -1], [1, 1])
    with pytest.raises(ValueError, match="3 values"):
        tel.add([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="episode_starts"):
        command_metrics(np.zeros((3, 1)), -1, 1, [True])
