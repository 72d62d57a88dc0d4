"""Command telemetry, pure numpy (no torch, no rclpy): how a controller's joint commands treat the motors.

One definition of each figure, shared by the learning campaign (``bench/learning/``, both algorithms), the headless
trainer's ``evaluations.csv``, the bag analysis (:mod:`symphony_ros.bags.analysis`) and, later, the actor's status.

Shapes and units: T commands of d joints, ``commands`` (T, d) in command units (whatever the motors take: rad, N·m,
MuJoCo ctrl units); ``low``/``high`` (d,) the per-joint command bounds in the same units (high > low);
``episode_starts`` (T,) bool, True where a command is the first of an episode (the first command always starts one).
Frequencies are in units of the control rate (1 = one cycle per command), so no clock is needed. Per joint:

saturation
    share of commands with a ≥ high − 5%·(high − low) or a ≤ low + 5%·(high − low) (beyond a bound counts too).
abs_delta
    mean |a_t − a_{t−1}| over consecutive commands of the same episode, divided by (high − low): the share of the
    range crossed per step (a ±bound square wave gives 1.0). ``abs_delta_units`` is the same in command units.
hf_share
    high-frequency share of the command spectrum: the commands are cut into segments (one per episode, and an
    episode longer than ``max_segment`` commands into consecutive pieces of that length); per segment of at least
    ``min_segment`` (8) commands the mean is removed and the one-sided power spectrum |rfft|² taken; share = power
    at frequencies above a quarter of the control rate (k/n > 1/4, the upper half of the band up to Nyquist) /
    power at all frequencies above 0, both summed over the segments. A ±1 alternation gives 1.0, a constant or a
    slow sine 0.0, white noise about 0.5. NaN when no segment has any power.
reach
    max_t |a_t − c| / r with c = (high + low)/2 and r = (high − low)/2: how much of the bound the commands reach at
    all (1.0 = a bound is reached; > 1 = commands beyond a bound, which the motor or simulator clamps).
sign_flips
    share of consecutive same-episode pairs whose commands lie on opposite sides of the range centre c (a bang-bang
    limit cycle gives ~1.0).

Rows holding NaN/Inf are skipped (counted in ``nonfinite``); an episode start on a skipped row moves to the next
kept row. The streaming :class:`CommandTelemetry` gives the same numbers as :func:`command_metrics` on the same
sequence (up to float rounding) and keeps at most one segment (``max_segment`` × d floats) for the spectrum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SATURATION_BAND = 0.05      # share of the range, from either bound
HF_FRACTION = 0.25          # high-frequency band: f > HF_FRACTION × control rate (above half of Nyquist)
MIN_SEGMENT = 8             # shortest segment whose spectrum counts
MAX_SEGMENT = 4096          # streaming memory bound (commands kept for one spectrum)


@dataclass(frozen=True)
class CommandMetrics:
    """Per-joint figures of a command sequence (each array (d,); see the module docstring for definitions)."""

    count: int                   # commands used (finite rows)
    nonfinite: int               # rows skipped for NaN/Inf
    pairs: int                   # consecutive same-episode pairs (the |Δa| denominator)
    segments: int                # spectrum segments counted (≥ min_segment commands)
    saturation: np.ndarray       # share in [0, 1]
    abs_delta: np.ndarray        # share of the range per step
    abs_delta_units: np.ndarray  # command units per step
    hf_share: np.ndarray         # share in [0, 1]
    reach: np.ndarray            # share of the half range from the centre (1 = a bound)
    sign_flips: np.ndarray       # share of pairs in [0, 1]

    def means(self) -> dict[str, float]:
        """Each figure as the mean over joints (NaN-aware; NaN when no joint has a value)."""
        out = {}
        for key in ("saturation", "abs_delta", "abs_delta_units", "hf_share", "reach", "sign_flips"):
            v = np.asarray(getattr(self, key), np.float64)
            out[key] = float(np.nanmean(v)) if v.size and np.isfinite(v).any() else math.nan
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: counts, per-joint lists (NaN → None) and ``<figure>_mean`` entries."""
        def clean(v):
            return [float(x) if math.isfinite(x) else None for x in np.asarray(v, np.float64)]
        out: dict[str, Any] = {"count": self.count, "nonfinite": self.nonfinite, "pairs": self.pairs,
                               "segments": self.segments}
        for key, m in self.means().items():
            out[key] = clean(getattr(self, key))
            out[f"{key}_mean"] = m if math.isfinite(m) else None
        return out


# ---------------------------------------------------------------------------------------------- checks
def _bounds(low: Any, high: Any, d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    lo = np.asarray(low, np.float64).reshape(-1)
    hi = np.asarray(high, np.float64).reshape(-1)
    if d is not None:
        if lo.size == 1:
            lo = np.full(d, lo[0])
        if hi.size == 1:
            hi = np.full(d, hi[0])
    if lo.shape != hi.shape or lo.size == 0:
        raise ValueError(f"command bounds: low {lo.shape} and high {hi.shape} must be non-empty and of one size")
    if d is not None and lo.size != d:
        raise ValueError(f"command bounds have {lo.size} joints, the commands have {d}")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (hi > lo).all()):
        raise ValueError("command bounds must be finite with high > low for every joint; pass the joint limits")
    return lo, hi


def _segments(starts: np.ndarray, max_segment: int | None) -> list[np.ndarray]:
    """Index arrays of the spectrum segments: episodes, cut into pieces of max_segment."""
    n = starts.size
    if n == 0:
        return []
    cut = np.flatnonzero(starts)
    out = []
    for a, b in zip(cut, np.r_[cut[1:], n]):
        step = max_segment or (b - a)
        for s in range(a, b, step):
            out.append(np.arange(s, min(s + step, b)))
    return out


def _segment_power(x: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(power above fraction·rate, power above 0) per joint of one segment x (n, d), mean removed."""
    n = x.shape[0]
    p = np.abs(np.fft.rfft(x - x.mean(axis=0), axis=0)) ** 2
    k = np.arange(p.shape[0]) / n          # frequency in units of the control rate
    return p[k > fraction].sum(axis=0), p[k > 0].sum(axis=0)


# ---------------------------------------------------------------------------------------------- per figure
def saturation_share(a: np.ndarray, low: np.ndarray, high: np.ndarray, band: float = SATURATION_BAND) -> np.ndarray:
    """Per joint: share of commands (T, d) within ``band`` of the range from either bound (or beyond it)."""
    width = band * (high - low)
    if len(a) == 0:
        return np.full(np.shape(low), np.nan)
    return ((a >= high - width) | (a <= low + width)).mean(axis=0)


def mean_abs_delta(a: np.ndarray, episode_starts: np.ndarray) -> np.ndarray:
    """Per joint: mean |a_t − a_{t−1}| (command units) over consecutive commands of one episode; NaN if none."""
    d = a.shape[1] if a.ndim == 2 else 0
    if len(a) < 2:
        return np.full(d, np.nan)
    same = ~np.asarray(episode_starts, bool)[1:]
    diff = np.abs(np.diff(a, axis=0))[same]
    return diff.mean(axis=0) if len(diff) else np.full(d, np.nan)


def hf_share(a: np.ndarray, episode_starts: np.ndarray, fraction: float = HF_FRACTION,
             min_segment: int = MIN_SEGMENT, max_segment: int | None = None) -> np.ndarray:
    """Per joint: high-frequency share of the command spectrum (module docstring); NaN where there is no power."""
    hi, tot, _ = _hf_sums(a, np.asarray(episode_starts, bool), fraction, min_segment, max_segment)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, hi / np.where(tot > 0, tot, 1.0), np.nan)


def _hf_sums(a, starts, fraction, min_segment, max_segment):
    d = a.shape[1] if a.ndim == 2 else 0
    hi, tot, used = np.zeros(d), np.zeros(d), 0
    for seg in _segments(starts, max_segment):
        if len(seg) < min_segment:
            continue
        h, t = _segment_power(a[seg], fraction)
        hi += h
        tot += t
        used += 1
    return hi, tot, used


def reach(a: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per joint: max |a − centre| / half range (1 = a bound is reached); NaN without commands."""
    if len(a) == 0:
        return np.full(np.shape(low), np.nan)
    c, r = (high + low) / 2, (high - low) / 2
    return (np.abs(a - c) / r).max(axis=0)


def sign_flips(a: np.ndarray, episode_starts: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per joint: share of consecutive same-episode pairs on opposite sides of the range centre; NaN if none."""
    d = a.shape[1] if a.ndim == 2 else 0
    if len(a) < 2:
        return np.full(d, np.nan)
    x = a - (high + low) / 2
    same = ~np.asarray(episode_starts, bool)[1:]
    flips = (x[1:] * x[:-1] < 0)[same]
    return flips.mean(axis=0) if len(flips) else np.full(d, np.nan)


# ---------------------------------------------------------------------------------------------- batch
def command_metrics(commands: Any, low: Any, high: Any, episode_starts: Any = None, *,
                    band: float = SATURATION_BAND, fraction: float = HF_FRACTION, min_segment: int = MIN_SEGMENT,
                    max_segment: int | None = None) -> CommandMetrics:
    """All figures of a command sequence.

    Args: ``commands`` (T, d) command units; ``low``, ``high`` (d,) or scalars; ``episode_starts`` (T,) bool
    (None = one episode); ``max_segment`` cuts longer episodes for the spectrum (None = whole episodes; pass
    :data:`MAX_SEGMENT` to match a default :class:`CommandTelemetry`). Raises ValueError for wrong shapes/bounds.
    """
    a = np.asarray(commands, np.float64)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        raise ValueError(f"commands must be a (T, d) array, got shape {a.shape}")
    lo, hi = _bounds(low, high, a.shape[1])
    starts = np.zeros(len(a), bool) if episode_starts is None else np.asarray(episode_starts, bool).reshape(-1)
    if starts.size != len(a):
        raise ValueError(f"episode_starts has {starts.size} entries, commands have {len(a)} rows")
    keep = np.isfinite(a).all(axis=1)
    nonfinite = int((~keep).sum())
    if nonfinite:
        ids = np.cumsum(starts)[keep]           # an episode start on a dropped row moves to the next kept row
        a = a[keep]
        starts = np.r_[True, np.diff(ids) != 0] if len(a) else np.zeros(0, bool)
    if len(a):
        starts = starts.copy()
        starts[0] = True
    mad = mean_abs_delta(a, starts)
    hf_hi, hf_tot, used = _hf_sums(a, starts, fraction, min_segment, max_segment)
    with np.errstate(invalid="ignore", divide="ignore"):
        hf = np.where(hf_tot > 0, hf_hi / np.where(hf_tot > 0, hf_tot, 1.0), np.nan)
    return CommandMetrics(count=len(a), nonfinite=nonfinite, pairs=int((~starts[1:]).sum()) if len(a) else 0,
                          segments=used, saturation=saturation_share(a, lo, hi, band), abs_delta=mad / (hi - lo),
                          abs_delta_units=mad, hf_share=hf, reach=reach(a, lo, hi),
                          sign_flips=sign_flips(a, starts, lo, hi))


# ---------------------------------------------------------------------------------------------- streaming
class CommandTelemetry:
    """Streaming accumulator of :func:`command_metrics` for a control loop: ``add(command, new_episode)`` per
    command, ``summary()`` at any time (the open segment included, without closing it), ``reset()`` to start a new
    window. Memory: O(max_segment · d) (only the current segment is kept for the spectrum).

    Args: ``low``, ``high`` (d,) command bounds; ``band``, ``fraction``, ``min_segment`` as in the module docstring;
    ``max_segment`` commands per spectrum segment (a longer episode is cut into pieces of this length).
    """

    def __init__(self, low: Any, high: Any, *, band: float = SATURATION_BAND, fraction: float = HF_FRACTION,
                 min_segment: int = MIN_SEGMENT, max_segment: int = MAX_SEGMENT) -> None:
        self.low, self.high = _bounds(low, high)
        if int(max_segment) < 1:
            raise ValueError(f"max_segment must be >= 1, got {max_segment}")
        self.d = self.low.size
        self.band, self.fraction, self.min_segment, self.max_segment = band, fraction, int(min_segment), \
            int(max_segment)
        self._width = band * (self.high - self.low)
        self._c, self._r = (self.high + self.low) / 2, (self.high - self.low) / 2
        self._seg = np.empty((self.max_segment, self.d))
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new window); the next command starts an episode."""
        self.count = 0
        self.nonfinite = 0
        self.pairs = 0
        self._sat = np.zeros(self.d)
        self._dsum = np.zeros(self.d)
        self._flips = np.zeros(self.d)
        self._reach = np.full(self.d, -np.inf)
        self._hf_hi = np.zeros(self.d)
        self._hf_tot = np.zeros(self.d)
        self._segments = 0
        self._n = 0                       # commands in the current segment
        self._prev: np.ndarray | None = None
        self._pending_start = True

    def add(self, command: Any, new_episode: bool = False) -> None:
        """One command (d,) in command units; ``new_episode`` True for the first command of an episode.
        A command with NaN/Inf is counted in ``nonfinite`` and skipped. Raises ValueError for a wrong size."""
        a = np.asarray(command, np.float64).reshape(-1)
        if a.size != self.d:
            raise ValueError(f"command has {a.size} values, the telemetry was set up for {self.d} joints")
        start = bool(new_episode) or self._pending_start
        if not np.isfinite(a).all():
            self.nonfinite += 1
            self._pending_start = start
            return
        self._pending_start = False
        if start:
            self._close_segment()
            self._prev = None
        elif self._n >= self.max_segment:
            self._close_segment()
        self.count += 1
        self._sat += (a >= self.high - self._width) | (a <= self.low + self._width)
        np.maximum(self._reach, np.abs(a - self._c) / self._r, out=self._reach)
        if self._prev is not None:
            self.pairs += 1
            self._dsum += np.abs(a - self._prev)
            self._flips += (a - self._c) * (self._prev - self._c) < 0
        self._prev = a
        self._seg[self._n] = a
        self._n += 1

    def _segment_sums(self) -> tuple[np.ndarray, np.ndarray, int]:
        if self._n < self.min_segment:
            return np.zeros(self.d), np.zeros(self.d), 0
        h, t = _segment_power(self._seg[:self._n], self.fraction)
        return h, t, 1

    def _close_segment(self) -> None:
        h, t, used = self._segment_sums()
        self._hf_hi += h
        self._hf_tot += t
        self._segments += used
        self._n = 0

    def summary(self) -> CommandMetrics:
        """The figures of everything added since the last reset (see :func:`command_metrics`)."""
        h, t, used = self._segment_sums()
        hi, tot = self._hf_hi + h, self._hf_tot + t
        nan = np.full(self.d, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            hf = np.where(tot > 0, hi / np.where(tot > 0, tot, 1.0), np.nan)
            mad = self._dsum / self.pairs if self.pairs else nan
            flips = self._flips / self.pairs if self.pairs else nan
        return CommandMetrics(count=self.count, nonfinite=self.nonfinite, pairs=self.pairs,
                              segments=self._segments + used,
                              saturation=self._sat / self.count if self.count else nan,
                              abs_delta=mad / (self.high - self.low), abs_delta_units=mad, hf_share=hf,
                              reach=self._reach.copy() if self.count else nan, sign_flips=flips)
