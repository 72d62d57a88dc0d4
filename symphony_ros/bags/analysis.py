"""Analyse a training bag: the numbers as JSON for scripts, and a self-contained HTML report (plots embedded as
base64 PNGs) a person opens in a browser. Two bags are compared side by side.

Definitions (all per robot; a robot is a topic namespace, '/' without one):

episodes
    from ``env_step`` (duplicates of the same (episode, step), which lockstep re-publishes, counted once): return =
    sum of the rewards of an episode's env_steps, length = its last step index (= its number of transitions); an
    episode is complete when its last env_step is terminated or truncated. Without env_step: from ``transitions``
    (grouped by header.frame_id and episode).
commands
    ``joint_commands`` data. Limits: ``limits`` (low, high), default the policy range [-1, 1] (the commands are in
    policy units). saturation = share of commands with a >= high - 5% (high - low) or a <= low + 5% (high - low).
    Histograms: 41 bins over [min(low, data), max(high, data)].
smoothness
    mean |Δa|: mean absolute difference of consecutive commands of the same episode (a command belongs to the
    episode of the latest env_step received before it). High-frequency share: per episode segment (>= 8 commands),
    the mean is removed and the one-sided power spectrum |rfft|² taken; share = power at frequencies above a
    quarter of the control rate (the upper half of the band up to Nyquist) / power at all frequencies above 0,
    both summed over the segments. The control rate = 1 / median interval between commands. (Saturation, mean
    |Δa| and HF share are computed by :mod:`symphony_ros.control.telemetry`, the definitions shared with training.)
learner
    ``learner_status`` over time: σ and β means, reward scale (its last value; ``learning_started_s`` = the first
    status with learning = true), losses, updates. ``rewards``: statistics of the raw env_step rewards (step > 0).
timing
    per topic: count, rate, inter-message intervals (mean, median, std = jitter, p95, p99, max) of the receive
    timestamps, gaps (intervals > 2× the median). Per robot: ``dropped_steps`` = step indices missing inside an
    episode (a jump of k > 1 counts k - 1; an episode not starting at step 0 counts its first steps too, except the
    one the recording started in), ``missing_episodes`` = episode indices never seen, ``duplicate_env_steps``,
    ``unanswered_steps`` = non-final env_steps with no joint command before the next env_step, response latency
    env_step → first command after it, ``transitions_missing`` = env_steps with step > 0 (but the last one, which
    may be in flight) minus Transition messages, at least 0.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..control import telemetry
from .reader import BagReader
from .typestore import ENV_STEP, FLOAT64_MULTI_ARRAY, LEARNER_STATUS, TRANSITION

SATURATION_BAND = telemetry.SATURATION_BAND
HIST_BINS = 41
HF_FRACTION = telemetry.HF_FRACTION   # high-frequency band: f > HF_FRACTION * control rate (above half of Nyquist)
MIN_SEGMENT = telemetry.MIN_SEGMENT


def _ns_of(topic: str) -> str:
    ns = topic.rstrip("/").rsplit("/", 1)[0]
    return ns or "/"


def _f(x) -> float | None:
    """JSON-safe float (NaN/Inf → None)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _stats(v: np.ndarray) -> dict[str, float | None]:
    if v.size == 0:
        return dict(mean=None, median=None, std=None, p95=None, p99=None, max=None, min=None)
    return dict(mean=_f(v.mean()), median=_f(np.median(v)), std=_f(v.std()), p95=_f(np.percentile(v, 95)),
                p99=_f(np.percentile(v, 99)), max=_f(v.max()), min=_f(v.min()))


# ---------------------------------------------------------------------------------------------- extraction
def frame_id_of(data: bytes) -> str:
    """header.frame_id of a CDR message that starts with a std_msgs/Header, without deserialising the rest."""
    if len(data) < 16:
        return ""
    order = "little" if data[1] & 1 else "big"
    n = int.from_bytes(data[12:16], order)
    if n <= 1 or 16 + n > len(data):
        return ""
    return data[16:16 + n - 1].decode("utf-8", "replace")


def robot_of(frame_id: str, topic_ns: str, robots) -> str:
    """The robot a shared-topic message belongs to: the namespace named by its frame_id when there is one (the
    actor's robot_id is its namespace), else the topic's namespace."""
    if frame_id:
        key = frame_id if frame_id.startswith("/") else "/" + frame_id
        if key in robots:
            return key
    return topic_ns


@dataclass
class _Robot:
    env_t: list = field(default_factory=list)
    env_episode: list = field(default_factory=list)
    env_step: list = field(default_factory=list)
    env_reward: list = field(default_factory=list)
    env_term: list = field(default_factory=list)
    env_trunc: list = field(default_factory=list)
    duplicates: int = 0
    seen: set = field(default_factory=set)
    cmd_t: list = field(default_factory=list)
    cmd: list = field(default_factory=list)
    transitions: int = 0


@dataclass
class _Extract:
    robots: dict[str, _Robot] = field(default_factory=dict)
    trans: dict[str, dict[int, list]] = field(default_factory=dict)   # frame_id -> episode -> [r, n, ended, t]
    status: list = field(default_factory=list)
    trans_counts: dict[tuple[str, str], int] = field(default_factory=dict)   # (frame_id, topic namespace) -> n
    topic_times: dict[str, list] = field(default_factory=dict)


def _extract(reader: BagReader) -> _Extract:
    ex = _Extract()
    ts = reader.typestore
    env_topics = set(reader.topic_names(msgtype=ENV_STEP))
    cmd_topics = {t for t in reader.topic_names(basename="joint_commands") if reader.topics[t].msgtype ==
                  FLOAT64_MULTI_ARRAY}
    status_topics = set(reader.topic_names(msgtype=LEARNER_STATUS))
    trans_topics = set(reader.topic_names(msgtype=TRANSITION))
    decode_trans = not env_topics
    for t in reader.topics:
        ex.topic_times[t] = []
    for m in reader.messages():
        ex.topic_times[m.topic].append(m.timestamp)
        topic = m.topic
        if topic in env_topics:
            msg = ts.deserialize_cdr(m.data, ENV_STEP)
            r = ex.robots.setdefault(_ns_of(topic), _Robot())
            key = (int(msg.episode), int(msg.step))
            if key in r.seen:
                r.duplicates += 1
                continue
            r.seen.add(key)
            r.env_t.append(m.timestamp)
            r.env_episode.append(key[0])
            r.env_step.append(key[1])
            r.env_reward.append(float(msg.reward))
            r.env_term.append(bool(msg.terminated))
            r.env_trunc.append(bool(msg.truncated))
        elif topic in cmd_topics:
            msg = ts.deserialize_cdr(m.data, FLOAT64_MULTI_ARRAY)
            r = ex.robots.setdefault(_ns_of(topic), _Robot())
            r.cmd_t.append(m.timestamp)
            r.cmd.append(np.asarray(msg.data, np.float64))
        elif topic in status_topics:
            s = ts.deserialize_cdr(m.data, LEARNER_STATUS)
            ex.status.append((m.timestamp, int(s.updates), float(s.sigma_mean), float(s.beta_mean),
                              float(s.reward_scale), bool(s.learning), float(s.critic_loss), float(s.actor_loss),
                              float(s.swaddling_loss), int(s.buffer_fill), int(s.transitions_stored),
                              float(s.updates_per_second)))
        elif topic in trans_topics:
            fid = frame_id_of(m.data)
            if decode_trans:
                tr = ts.deserialize_cdr(m.data, TRANSITION)
                eps = ex.trans.setdefault(fid or _ns_of(topic), {})
                e = eps.setdefault(int(tr.episode), [0.0, 0, False, 0])
                e[0] += float(tr.reward)
                e[1] += 1
                e[2] = e[2] or bool(tr.terminated or tr.truncated)
                e[3] = m.timestamp
            key = (fid, _ns_of(topic))
            ex.trans_counts[key] = ex.trans_counts.get(key, 0) + 1
    return ex


# ---------------------------------------------------------------------------------------------- metrics
def episodes_from_env(r: _Robot, t0: int) -> dict[str, Any]:
    ep = np.asarray(r.env_episode, np.int64)
    out: list[dict[str, Any]] = []
    if ep.size:
        order = np.lexsort((np.asarray(r.env_step), ep))    # by episode, then step
        ep_sorted = ep[order]
        bounds = np.flatnonzero(np.diff(ep_sorted)) + 1
        for idx in np.split(order, bounds):
            steps = np.asarray(r.env_step)[idx]
            last = idx[np.argmax(steps)]
            term, trunc = bool(r.env_term[last]), bool(r.env_trunc[last])
            out.append(dict(episode=int(r.env_episode[idx[0]]), ret=float(np.sum(np.asarray(r.env_reward)[idx],
                                                                                   dtype=np.float64)),
                            length=int(steps.max()), terminated=term, truncated=trunc, complete=term or trunc,
                            end_time_s=(int(r.env_t[last]) - t0) / 1e9))
    return _episode_summary(out)


def _episode_summary(eps: list[dict[str, Any]]) -> dict[str, Any]:
    done = [e for e in eps if e["complete"]]
    rets = np.array([e["ret"] for e in done], np.float64)
    lens = np.array([e["length"] for e in done], np.float64)
    return dict(count=len(done), in_progress=[e for e in eps if not e["complete"]],
                episode=[e["episode"] for e in done], returns=rets.tolist(), lengths=[int(x) for x in lens],
                end_time_s=[e["end_time_s"] for e in done], terminated=[e["terminated"] for e in done],
                return_mean=_f(rets.mean()) if rets.size else None, return_last=_f(rets[-1]) if rets.size else None,
                return_best=_f(rets.max()) if rets.size else None,
                length_mean=_f(lens.mean()) if lens.size else None,
                terminated_share=_f(np.mean([e["terminated"] for e in done])) if done else None)


def episodes_from_transitions(eps: dict[int, list], t0: int) -> dict[str, Any]:
    out = [dict(episode=k, ret=v[0], length=v[1], terminated=v[2], truncated=False, complete=v[2],
                end_time_s=(v[3] - t0) / 1e9) for k, v in sorted(eps.items())]
    return _episode_summary(out)


def command_episode_ids(r: _Robot) -> np.ndarray:
    """Episode of each command: that of the latest env_step received at or before it (-1 before any)."""
    if not r.cmd_t:
        return np.zeros(0, np.int64)
    env_t = np.asarray(r.env_t, np.int64)
    if env_t.size == 0:
        return np.zeros(len(r.cmd_t), np.int64)
    order = np.argsort(env_t, kind="stable")
    env_t, env_ep = env_t[order], np.asarray(r.env_episode, np.int64)[order]
    idx = np.searchsorted(env_t, np.asarray(r.cmd_t, np.int64), side="right") - 1
    return np.where(idx >= 0, env_ep[np.clip(idx, 0, None)], -1)


def _starts(episode: np.ndarray) -> np.ndarray:
    """Episode ids (T,) → episode-start flags (T,) for :mod:`symphony_ros.control.telemetry`."""
    episode = np.asarray(episode)
    return np.r_[True, episode[1:] != episode[:-1]] if episode.size else np.zeros(0, bool)


def saturation_share(a: np.ndarray, low: np.ndarray, high: np.ndarray, band: float = SATURATION_BAND) -> np.ndarray:
    """Per joint: share of commands within ``band`` of the range from either limit (or beyond it)."""
    return telemetry.saturation_share(a, low, high, band)


def mean_abs_delta(a: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Per joint: mean |a_t - a_{t-1}| over consecutive commands of the same episode."""
    return telemetry.mean_abs_delta(a, _starts(episode))


def hf_share(a: np.ndarray, episode: np.ndarray, rate_hz: float, fraction: float = HF_FRACTION,
             min_segment: int = MIN_SEGMENT) -> np.ndarray:
    """Per joint: high-frequency share of the command spectrum (see the module docstring); NaN without a rate."""
    if len(a) == 0 or not rate_hz > 0:
        return np.full(a.shape[1] if a.ndim == 2 else 0, np.nan)
    return telemetry.hf_share(a, _starts(episode), fraction, min_segment)


def interval_stats(times_ns: list[int] | np.ndarray) -> dict[str, Any]:
    t = np.sort(np.asarray(times_ns, np.int64))
    out: dict[str, Any] = dict(count=int(t.size))
    if t.size < 2:
        out.update(rate_hz=None, interval_ms=_stats(np.zeros(0)), gaps=0)
        return out
    dt = np.diff(t) / 1e6
    span = (t[-1] - t[0]) / 1e9
    med = float(np.median(dt))
    out.update(rate_hz=_f((t.size - 1) / span) if span > 0 else None, interval_ms=_stats(dt),
               gaps=int((dt > 2 * med).sum()) if med > 0 else 0)
    return out


def control_timing(r: _Robot) -> dict[str, Any]:
    ep, st = np.asarray(r.env_episode, np.int64), np.asarray(r.env_step, np.int64)
    dropped = 0
    missing_eps = 0
    if ep.size:
        order = np.lexsort((st, ep))
        e2, s2 = ep[order], st[order]
        same = e2[1:] == e2[:-1]
        jumps = np.diff(s2)[same]
        dropped = int(np.clip(jumps - 1, 0, None).sum())
        # the first step seen of an episode should be 0 (but the recording may have started in the middle of its
        # first episode)
        firsts = np.r_[True, ~same]
        firsts[0] = False
        dropped += int(s2[firsts].sum())
        uniq = np.unique(ep)
        missing_eps = int((uniq.max() - uniq.min() + 1) - uniq.size)
    unanswered = 0
    lat = []
    if r.env_t:
        env_t = np.asarray(r.env_t, np.int64)
        order = np.argsort(env_t, kind="stable")
        env_t = env_t[order]
        final = (np.asarray(r.env_term) | np.asarray(r.env_trunc))[order]
        cmd_t = np.sort(np.asarray(r.cmd_t, np.int64))
        nxt = np.r_[env_t[1:], np.iinfo(np.int64).max]
        k = np.searchsorted(cmd_t, env_t, side="left")     # first command at/after each env_step
        has = k < cmd_t.size
        first_cmd = cmd_t[np.clip(k, 0, cmd_t.size - 1)] if cmd_t.size else np.zeros_like(env_t)
        answered = has & (first_cmd < nxt)
        live = ~final
        live[-1] = live[-1] and bool(answered[-1])   # the last env_step may still be waiting when recording stopped
        unanswered = int((live & ~answered).sum())
        lat = ((first_cmd - env_t)[answered & ~final] / 1e6) if cmd_t.size else np.zeros(0)
    # env_steps that should have produced a Transition (s' = that env_step); the last one recorded may still be in
    # flight when the recording stopped, so it is not counted
    n_env_steps = max(0, int((np.asarray(r.env_step) > 0).sum()) - 1) if r.env_step else 0
    return dict(env_step=interval_stats(r.env_t), joint_commands=interval_stats(r.cmd_t), dropped_steps=dropped,
                missing_episodes=missing_eps, duplicate_env_steps=r.duplicates, unanswered_steps=unanswered,
                response_latency_ms=_stats(np.asarray(lat, np.float64)),
                transitions=r.transitions,
                transitions_missing=max(0, n_env_steps - r.transitions) if r.transitions else None)


def command_metrics(r: _Robot, limits) -> dict[str, Any]:
    if not r.cmd:
        return dict(count=0)
    sizes = {c.size for c in r.cmd}
    d = max(sizes, key=lambda s: sum(1 for c in r.cmd if c.size == s))
    keep = [i for i, c in enumerate(r.cmd) if c.size == d]
    finite = [i for i in keep if np.isfinite(r.cmd[i]).all()]   # a NaN/Inf command is counted, not analysed
    non_finite = len(keep) - len(finite)
    keep = finite
    if not keep:
        return dict(count=0, wrong_size=len(r.cmd) - non_finite, non_finite=non_finite)
    a = np.stack([r.cmd[i] for i in keep])
    cmd_t = np.asarray(r.cmd_t, np.int64)[keep]
    r_sub = _Robot(env_t=r.env_t, env_episode=r.env_episode, cmd_t=list(cmd_t))
    episode = command_episode_ids(r_sub)
    low, high, source = _limits(limits, d)
    dt = np.diff(np.sort(cmd_t)) / 1e9
    rate = float(1.0 / np.median(dt)) if dt.size and np.median(dt) > 0 else float("nan")
    sat = saturation_share(a, low, high)
    mad = mean_abs_delta(a, episode)
    hf = hf_share(a, episode, rate)
    lo_edge, hi_edge = np.minimum(low, a.min(axis=0)), np.maximum(high, a.max(axis=0))
    hists, edges = [], []
    for j in range(d):
        c, e = np.histogram(a[:, j], bins=HIST_BINS, range=(float(lo_edge[j]), float(hi_edge[j])))
        hists.append(c.tolist())
        edges.append([float(x) for x in e])
    return dict(count=int(len(a)), wrong_size=len(r.cmd) - len(a) - non_finite, non_finite=non_finite, act_dim=int(d),
                limits=dict(low=low.tolist(), high=high.tolist(), source=source),
                saturation=[_f(x) for x in sat], saturation_mean=_f(sat.mean()),
                mean_abs_delta=[_f(x) for x in mad], mean_abs_delta_mean=_f(np.nanmean(mad)) if np.isfinite(mad).any()
                else None,
                hf_share=[_f(x) for x in hf], hf_share_mean=_f(np.nanmean(hf)) if np.isfinite(hf).any() else None,
                control_rate_hz=_f(rate), hf_cutoff_hz=_f(HF_FRACTION * rate),
                command_mean=[_f(x) for x in a.mean(axis=0)], command_std=[_f(x) for x in a.std(axis=0)],
                histograms=dict(edges=edges, counts=hists))


def _limits(limits, d: int) -> tuple[np.ndarray, np.ndarray, str]:
    if limits is None:
        return np.full(d, -1.0), np.full(d, 1.0), "policy range [-1, 1] (default)"
    if isinstance(limits, str):   # gymnasium env id: its action bounds
        from ..envs.gym_env import make_env
        env = make_env(limits)
        try:
            lo, hi = np.asarray(env.action_space.low, np.float64), np.asarray(env.action_space.high, np.float64)
        finally:
            env.close()
        if lo.size != d:
            raise ValueError(f"environment {limits} has {lo.size} actions; the bag's commands have {d}")
        return lo, hi, f"action bounds of {limits}"
    lo, hi = limits
    lo = np.broadcast_to(np.asarray(lo, np.float64), (d,)).copy()
    hi = np.broadcast_to(np.asarray(hi, np.float64), (d,)).copy()
    if not (hi > lo).all():
        raise ValueError("command limits need high > low for every joint")
    return lo, hi, "given"


def learner_metrics(status: list, t0: int) -> dict[str, Any]:
    if not status:
        return dict(samples=0)
    s = sorted(status)
    cols = list(zip(*s))
    t = [(x - t0) / 1e9 for x in cols[0]]
    learning = cols[5]
    started = next((t[i] for i, v in enumerate(learning) if v), None)
    return dict(samples=len(s), time_s=t, updates=list(cols[1]), sigma_mean=[_f(x) for x in cols[2]],
                beta_mean=[_f(x) for x in cols[3]], reward_scale=[_f(x) for x in cols[4]],
                learning=list(learning), critic_loss=[_f(x) for x in cols[6]], actor_loss=[_f(x) for x in cols[7]],
                swaddling_loss=[_f(x) for x in cols[8]], buffer_fill=list(cols[9]),
                transitions_stored=list(cols[10]), updates_per_second=[_f(x) for x in cols[11]],
                reward_scale_final=_f(cols[4][-1]), learning_started_s=started,
                sigma_final=_f(cols[2][-1]), beta_final=_f(cols[3][-1]), updates_final=int(cols[1][-1]))


# ---------------------------------------------------------------------------------------------- analysis
def analyze(bag: str | Path | BagReader, *, limits=None) -> dict[str, Any]:
    """All numbers of one bag (JSON-serialisable, see the module docstring). ``limits``: None (policy range
    [-1, 1]), a (low, high) pair of scalars or per-joint arrays, or a gymnasium env id (its action bounds)."""
    t_start = time.perf_counter()
    reader = bag if isinstance(bag, BagReader) else BagReader(bag)
    ex = _extract(reader)
    t0 = reader.start_ns
    for (fid, ns), n in ex.trans_counts.items():
        key = robot_of(fid, ns, ex.robots)
        if key in ex.robots:
            ex.robots[key].transitions += n
    robots: dict[str, Any] = {}
    for ns, r in sorted(ex.robots.items()):
        eps = episodes_from_env(r, t0) if r.env_t else dict(count=0)
        rew = np.asarray([x for x, s in zip(r.env_reward, r.env_step) if s > 0], np.float64)
        robots[ns] = dict(
            episodes=eps, commands=command_metrics(r, limits), timing=control_timing(r),
            rewards=dict(count=int(rew.size), mean=_f(rew.mean()) if rew.size else None,
                         abs_mean=_f(np.abs(rew).mean()) if rew.size else None,
                         std=_f(rew.std()) if rew.size else None, min=_f(rew.min()) if rew.size else None,
                         max=_f(rew.max()) if rew.size else None))
    for fid, eps in ex.trans.items():   # no env_step recorded: episodes from the transitions
        key = fid if fid.startswith("/") else f"/{fid}"
        robots.setdefault(key, {})["episodes"] = episodes_from_transitions(eps, t0)
    result = dict(
        bag=str(reader.path), generated=time.strftime("%Y-%m-%d %H:%M:%S"), duration_s=reader.duration_s,
        start_ns=t0, message_count=reader.message_count,
        topics={n: dict(type=t.msgtype, count=t.count) for n, t in sorted(reader.topics.items())},
        damage=list(reader.damage), complete=not reader.damage,
        robots=robots, learner=learner_metrics(ex.status, t0),
        timing={t: interval_stats(v) for t, v in sorted(ex.topic_times.items())},
        definitions=dict(saturation_band=SATURATION_BAND, hf_fraction_of_rate=HF_FRACTION, histogram_bins=HIST_BINS,
                         min_segment=MIN_SEGMENT))
    result["_times"] = {t: v for t, v in ex.topic_times.items()
                        if t.rstrip("/").rsplit("/", 1)[-1] in ("env_step", "joint_commands")}
    result["analysis_time_s"] = time.perf_counter() - t_start
    return result


def _public(obj):
    """Drop private keys (arrays kept for plotting) for JSON."""
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [_public(v) for v in obj]
    return obj


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side key numbers of two analyses (b - a as delta), per robot present in both or either."""
    rows = []
    for name, get in _key_metrics():
        va, vb = get(a), get(b)
        delta = (vb - va) if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        rows.append(dict(metric=name, a=va, b=vb, delta=delta))
    per_joint = {}
    ra, rb = _first_robot(a), _first_robot(b)
    for key in ("saturation", "mean_abs_delta", "hf_share"):
        per_joint[key] = dict(a=(ra or {}).get("commands", {}).get(key), b=(rb or {}).get("commands", {}).get(key))
    return dict(a=a["bag"], b=b["bag"], metrics=rows, per_joint=per_joint)


def _first_robot(res: dict[str, Any]) -> dict[str, Any] | None:
    for _, r in sorted(res.get("robots", {}).items()):
        if r.get("commands", {}).get("count") or r.get("episodes", {}).get("count"):
            return r
    return next(iter(res.get("robots", {}).values()), None)


def _key_metrics():
    def robot(path):
        def get(res):
            r = _first_robot(res)
            cur: Any = r
            for p in path:
                if not isinstance(cur, dict):
                    return None
                cur = cur.get(p)
            return cur
        return get

    def learner(key):
        return lambda res: res.get("learner", {}).get(key)
    return [("duration_s", lambda res: res.get("duration_s")), ("messages", lambda res: res.get("message_count")),
            ("episodes", robot(["episodes", "count"])), ("return mean", robot(["episodes", "return_mean"])),
            ("return last", robot(["episodes", "return_last"])), ("return best", robot(["episodes", "return_best"])),
            ("episode length mean", robot(["episodes", "length_mean"])),
            ("saturation mean", robot(["commands", "saturation_mean"])),
            ("mean |Δa| (mean over joints)", robot(["commands", "mean_abs_delta_mean"])),
            ("HF share (mean over joints)", robot(["commands", "hf_share_mean"])),
            ("control rate (Hz)", robot(["commands", "control_rate_hz"])),
            ("env_step interval median (ms)", robot(["timing", "env_step", "interval_ms", "median"])),
            ("env_step jitter std (ms)", robot(["timing", "env_step", "interval_ms", "std"])),
            ("dropped steps", robot(["timing", "dropped_steps"])),
            ("response latency median (ms)", robot(["timing", "response_latency_ms", "median"])),
            ("reward scale (learner)", learner("reward_scale_final")), ("σ final", learner("sigma_final")),
            ("β final", learner("beta_final")), ("updates", learner("updates_final")),
            ("mean |r| (env_step)", robot(["rewards", "abs_mean"]))]


# ---------------------------------------------------------------------------------------------- report
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(results: list[dict[str, Any]], labels: list[str]) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = []
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    # returns and lengths over time
    fig, ax = plt.subplots(1, 2, figsize=(12, 3.6))
    any_ep = False
    for res, lab, col in zip(results, labels, colors):
        for ns, r in res["robots"].items():
            e = r.get("episodes", {})
            if e.get("count"):
                any_ep = True
                ax[0].plot(e["end_time_s"], e["returns"], ".-", color=col, ms=3, lw=0.8, label=f"{lab} {ns}")
                ax[1].plot(e["end_time_s"], e["lengths"], ".", color=col, ms=3, label=f"{lab} {ns}")
    if any_ep:
        ax[0].set(title="episode return", xlabel="time in bag (s)")
        ax[1].set(title="episode length (steps)", xlabel="time in bag (s)")
        ax[0].legend(fontsize=7)
        out.append(("Episode returns and lengths over time", _png(fig)))
    else:
        plt.close(fig)
    # command histograms (first bag's robots; comparison overlays the second)
    for ns in sorted({ns for res in results for ns in res["robots"]}):
        cms = [res["robots"].get(ns, {}).get("commands", {}) for res in results]
        if not any(c.get("count") for c in cms):
            continue
        d = max(c.get("act_dim", 0) for c in cms)
        cols = min(6, d)
        rows = math.ceil(d / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.7 * rows), squeeze=False)
        for j in range(rows * cols):
            axj = axes[j // cols][j % cols]
            if j >= d:
                axj.axis("off")
                continue
            for c, lab, col in zip(cms, labels, colors):
                if not c.get("count") or j >= c["act_dim"]:
                    continue
                e = np.asarray(c["histograms"]["edges"][j])
                h = np.asarray(c["histograms"]["counts"][j], np.float64)
                axj.stairs(h / max(h.sum(), 1), e, color=col, fill=len(results) == 1, alpha=0.6, label=lab)
                lo, hi = c["limits"]["low"][j], c["limits"]["high"][j]
                axj.axvline(lo, color="k", lw=0.5, ls=":")
                axj.axvline(hi, color="k", lw=0.5, ls=":")
            sat = ", ".join(f"{(c.get('saturation') or [None] * (j + 1))[j] or 0:.0%}" for c in cms if c.get("count"))
            axj.set_title(f"joint {j}  sat {sat}", fontsize=7)
            axj.tick_params(labelsize=6)
        fig.tight_layout()
        out.append((f"Command histograms {ns} (share of commands; dotted: limits; sat = within 5% of a limit)",
                    _png(fig)))
        # per-joint bars
        fig, ax = plt.subplots(1, 3, figsize=(13, 3.2))
        width = 0.8 / len(results)
        for k, (c, lab, col) in enumerate(zip(cms, labels, colors)):
            if not c.get("count"):
                continue
            x = np.arange(c["act_dim"]) + k * width
            for a, key, title in zip(ax, ("saturation", "mean_abs_delta", "hf_share"),
                                     ("saturation share", "mean |Δa| per step", "high-frequency share")):
                a.bar(x, [v if v is not None else np.nan for v in c[key]], width, color=col, label=lab)
                a.set(title=title, xlabel="joint")
        ax[0].legend(fontsize=7)
        out.append((f"Saturation and smoothness per joint {ns}", _png(fig)))
    # learner
    if any(res["learner"].get("samples") for res in results):
        fig, ax = plt.subplots(1, 3, figsize=(13, 3.2))
        for res, lab, col in zip(results, labels, colors):
            L = res["learner"]
            if not L.get("samples"):
                continue
            ax[0].plot(L["time_s"], L["sigma_mean"], color=col, label=f"σ {lab}")
            ax[0].plot(L["time_s"], L["beta_mean"], color=col, ls="--", label=f"β {lab}")
            ax[1].plot(L["time_s"], L["reward_scale"], color=col, label=lab)
            ax[2].plot(L["time_s"], L["critic_loss"], color=col, label=f"critic {lab}")
            ax[2].plot(L["time_s"], L["actor_loss"], color=col, ls="--", label=f"actor {lab}")
        ax[0].set(title="σ and β (means)", xlabel="time in bag (s)")
        ax[1].set(title="reward scale", xlabel="time in bag (s)")
        ax[2].set(title="losses", xlabel="time in bag (s)")
        for a in ax:
            a.legend(fontsize=7)
        out.append(("Learner: σ, β, reward scale and losses over time", _png(fig)))
    # timing
    fig, ax = plt.subplots(1, 2, figsize=(12, 3.2))
    drew = False
    for res, lab, col, arr in zip(results, labels, colors, [_intervals(r) for r in results]):
        for k, (name, dt) in enumerate(arr.items()):
            if dt.size:
                drew = True
                ax[k % 2].hist(dt, bins=80, histtype="step", color=col, label=f"{lab} {name}")
    if drew:
        ax[0].set(title="env_step inter-message interval (ms)", yscale="log")
        ax[1].set(title="joint_commands inter-message interval (ms)", yscale="log")
        for a in ax:
            a.legend(fontsize=7)
        out.append(("Control timing", _png(fig)))
    else:
        plt.close(fig)
    return out


def _intervals(res: dict[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for kind in ("env_step", "joint_commands"):
        vals = []
        for name, t in res.get("_times", {}).items():
            if name.rstrip("/").rsplit("/", 1)[-1] == kind:
                vals.append(np.diff(np.sort(np.asarray(t, np.int64))) / 1e6)
        out[kind] = np.concatenate(vals) if vals else np.zeros(0)
    return out


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.damage{background:#fff0f0;border:1px solid #d33;padding:.6em 1em;margin:1em 0}img{max-width:100%}
h2{border-bottom:1px solid #ddd;padding-bottom:3px}code{background:#f5f5f5;padding:1px 4px}"""


def render_html(results: list[dict[str, Any]], labels: list[str], comparison: dict[str, Any] | None = None) -> str:
    title = "symphony_ros bag analysis" + (" — comparison" if comparison else "")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{_CSS}</style>"
             f"</head><body><h1>{title}</h1>"]
    for res, lab in zip(results, labels):
        parts.append(f"<p><b>{html.escape(lab)}</b>: <code>{html.escape(res['bag'])}</code> — "
                     f"{res['duration_s']:.1f} s, {res['message_count']:,} messages</p>")
        if res["damage"]:
            parts.append("<div class='damage'><b>This bag is damaged; the report covers its readable part.</b><ul>" +
                         "".join(f"<li>{html.escape(d)}</li>" for d in res["damage"]) + "</ul></div>")
    if comparison:
        parts.append("<h2>Side by side</h2><table><tr><th>metric</th>" +
                     "".join(f"<th>{html.escape(x)}</th>" for x in labels) + "<th>Δ (B − A)</th></tr>")
        for row in comparison["metrics"]:
            parts.append(f"<tr><td>{html.escape(row['metric'])}</td><td>{_fmt(row['a'])}</td><td>{_fmt(row['b'])}"
                         f"</td><td>{_fmt(row['delta'])}</td></tr>")
        parts.append("</table>")
    for res, lab in zip(results, labels):
        parts.append(f"<h2>Summary {html.escape(lab)}</h2><table><tr><th>robot</th><th>episodes</th>"
                     "<th>return mean</th><th>return last</th><th>length mean</th><th>saturation</th>"
                     "<th>mean |Δa|</th><th>HF share</th><th>control rate (Hz)</th><th>jitter std (ms)</th>"
                     "<th>dropped steps</th><th>unanswered</th><th>latency p50 / p99 (ms)</th></tr>")
        for ns, r in res["robots"].items():
            e, c, t = r.get("episodes", {}), r.get("commands", {}), r.get("timing", {})
            lat = t.get("response_latency_ms", {})
            parts.append(
                f"<tr><td>{html.escape(ns)}</td><td>{_fmt(e.get('count'))}</td><td>{_fmt(e.get('return_mean'))}</td>"
                f"<td>{_fmt(e.get('return_last'))}</td><td>{_fmt(e.get('length_mean'))}</td>"
                f"<td>{_fmt(c.get('saturation_mean'))}</td><td>{_fmt(c.get('mean_abs_delta_mean'))}</td>"
                f"<td>{_fmt(c.get('hf_share_mean'))}</td><td>{_fmt(c.get('control_rate_hz'))}</td>"
                f"<td>{_fmt(t.get('env_step', {}).get('interval_ms', {}).get('std'))}</td>"
                f"<td>{_fmt(t.get('dropped_steps'))}</td><td>{_fmt(t.get('unanswered_steps'))}</td>"
                f"<td>{_fmt(lat.get('median'))} / {_fmt(lat.get('p99'))}</td></tr>")
        parts.append("</table>")
        L = res["learner"]
        if L.get("samples"):
            parts.append(f"<p>Learner: {L['samples']} status messages, updates {_fmt(L['updates_final'])}, reward "
                         f"scale {_fmt(L['reward_scale_final'])} (learning from {_fmt(L['learning_started_s'])} s), "
                         f"σ {_fmt(L['sigma_final'])}, β {_fmt(L['beta_final'])} at the end.</p>")
        parts.append("<table><tr><th>topic</th><th>type</th><th>count</th><th>rate (Hz)</th><th>interval median "
                     "(ms)</th><th>jitter std (ms)</th><th>p99 (ms)</th><th>max (ms)</th><th>gaps &gt;2×</th></tr>")
        for name, tm in res["timing"].items():
            iv = tm["interval_ms"]
            parts.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(res['topics'][name]['type'])}</td>"
                         f"<td>{_fmt(tm['count'])}</td><td>{_fmt(tm['rate_hz'])}</td><td>{_fmt(iv['median'])}</td>"
                         f"<td>{_fmt(iv['std'])}</td><td>{_fmt(iv['p99'])}</td><td>{_fmt(iv['max'])}</td>"
                         f"<td>{_fmt(tm['gaps'])}</td></tr>")
        parts.append("</table>")
    for caption, png in _plots(results, labels):
        parts.append(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' "
                     f"src='data:image/png;base64,{png}'>")
    parts.append("<h2>Definitions</h2><pre>" + html.escape(__doc__.split("Definitions", 1)[1].strip()) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(bags: list[str | Path], out_dir: str | Path, *, limits=None, labels: list[str] | None = None
                 ) -> dict[str, Any]:
    """Analyse one bag (or compare two) and write ``out_dir/report.html`` and ``out_dir/analysis.json`` (one bag)
    or ``comparison.json`` (two). Returns {"json": path, "html": path, "results": [...], "damage": [...]}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not 1 <= len(bags) <= 2:
        raise ValueError("analyze takes one bag, or two to compare")
    labels = labels or (["A", "B"] if len(bags) == 2 else ["bag"])
    results = []
    for b in bags:
        results.append(analyze(b, limits=limits))
    comparison = compare(results[0], results[1]) if len(results) == 2 else None
    page = render_html(results, labels, comparison)
    (out / "report.html").write_text(page, encoding="utf-8")
    if comparison is None:
        jpath = out / "analysis.json"
        payload: Any = _public(results[0])
    else:
        jpath = out / "comparison.json"
        payload = dict(comparison=comparison, results=[_public(r) for r in results])
    jpath.write_text(json.dumps(payload, indent=1, allow_nan=False), encoding="utf-8")
    return dict(json=jpath, html=out / "report.html", results=results,
                damage=[d for r in results for d in r["damage"]])
