"""TaskEngine: driver topics in, env steps out (no ROS; the ``task`` node feeds it messages and publishes its steps).

Each ``joint_states`` message is a candidate step (every ``decimation``-th one, for a driver faster than the control
rate; periods are counted on the driver's header stamps, so a gap in them skips step indices). It becomes an env
step only if every input it needs is trustworthy: joint names match the description (by NAME; a missing or extra
joint is reported once per distinct name set), values are finite and of the right size, and the IMU / odometry /
extra topics are no older than one control period (``max_input_age_periods``). Anything else is counted and NOT
published: the actor then falls back to its safe command (its watchdog), and the step index still advances, so no
transition spans the gap (the actor links only consecutive steps).

Episodes (docs/robot.md#episodes): step 0 has reward 0; the task plugin scores every later step and says when the
robot fell (terminated); the time limit ``episode_time_s`` truncates. After the final step the engine PAUSES: nothing
is published (so nothing reaches the buffer) until :meth:`TaskEngine.resume` (the operator's ``~/resume`` or the
driver's recovery service); meanwhile the actor ramps to its safe pose and the learner keeps learning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..control.safety import CommandMapping
from ..robot.description import RobotDescription
from .base import ObservationSpec, Odometry, RobotState, Task, TaskError

GAP_PERIODS = 1.5        # joint_states stamps further apart than this many control periods: periods were missed


@dataclass
class EngineSettings:
    """episode_time_s: time limit (truncated); start_paused: wait for resume() before the first episode;
    max_input_age_periods: how old (in control periods) imu/odometry/extra inputs may be; decimation: a step every
    this many joint_states messages (a driver publishing faster than the control rate)."""
    episode_time_s: float = 20.0
    start_paused: bool = False
    max_input_age_periods: float = 1.0
    decimation: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.episode_time_s) and self.episode_time_s > 0):
            raise TaskError(f"episode_time_s must be > 0, got {self.episode_time_s}")
        if not (math.isfinite(self.max_input_age_periods) and self.max_input_age_periods > 0):
            raise TaskError(f"max_input_age_periods must be > 0, got {self.max_input_age_periods}")
        if not (isinstance(self.decimation, int) and self.decimation >= 1):
            raise TaskError(f"decimation must be an integer >= 1, got {self.decimation}")


@dataclass
class StepOut:
    """One env step to publish: observation (obs_dim,) float32; reward of the step that led here (0 at step 0)."""
    episode: int
    step: int
    observation: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    stamp_ns: int
    why: str = ""          # why the episode ended (final steps)

    @property
    def final(self) -> bool:
        return self.terminated or self.truncated


@dataclass
class EngineCounters:
    """steps published, episodes started, inputs refused by kind, joint_states decimated away or not newer than the
    last (duplicates), control periods without a step (skipped), task plugin errors; inputs while paused."""
    steps: int = 0
    episodes: int = 0
    decimated: int = 0
    duplicates: int = 0
    skipped_periods: int = 0
    bad_joint_states: int = 0
    missing_joints: int = 0
    extra_joints: int = 0
    stale_imu: int = 0
    stale_odometry: int = 0
    stale_extra: int = 0
    bad_imu: int = 0
    bad_odometry: int = 0
    bad_extra: int = 0
    bad_command: int = 0
    task_errors: int = 0
    paused_inputs: int = 0
    returns: list[float] = field(default_factory=list)     # return of each finished episode

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.__dict__.items() if isinstance(v, int)}


def _finite(values: Any, size: int | None = None) -> np.ndarray | None:
    try:
        v = np.asarray(values, np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if (size is not None and v.size != size) or not np.isfinite(v).all():
        return None
    return v


class TaskEngine:
    """The task of one robot. ``report(kind, text)`` logs a refused input (the host rate-limits); ``info(text)`` logs
    an episode event. Raises TaskError at construction if the spec does not fit the description or the plugin
    gives a non-finite reward / observation on a neutral probe state (the node then stays unconfigured)."""

    def __init__(self, description: RobotDescription, task: Task, spec: ObservationSpec | None = None,
                 settings: EngineSettings | None = None, *, report: Callable[[str, str], None] = lambda k, t: None,
                 info: Callable[[str], None] = lambda t: None) -> None:
        self.d, self.task = description, task
        self.spec = spec if spec is not None else ObservationSpec(task.observation)
        self.settings = settings or EngineSettings()
        self.report, self.info = report, info
        self.n = EngineCounters()
        if self.spec.needs_imu and description.imu is None:
            raise TaskError(f"the observation uses the IMU ({', '.join(self.spec.names)}) but robot "
                            f"'{description.name}' has no imu")
        if (self.spec.needs_odometry or task.needs_odometry) and not description.odometry_topic:
            raise TaskError(f"task '{task.name}' / its observation need odometry but robot '{description.name}' has "
                            "no odometry_topic")
        self.mapping = CommandMapping(np.asarray(description.command_lower), np.asarray(description.command_upper),
                                      description.command_mode)
        self.period = description.period_s
        self.max_age = self.settings.max_input_age_periods * self.period
        self.limit_steps = max(1, int(round(self.settings.episode_time_s * description.control_rate_hz)))
        self._index: dict[tuple[str, ...], np.ndarray | None] = {}   # joint_states name tuple -> observed order
        self._reported: set[tuple[str, tuple[str, ...]]] = set()
        self.imu: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None    # rx time, quat, gyro, acc
        self.odometry: tuple[float, Odometry] | None = None
        self.extra: dict[str, tuple[float, np.ndarray]] = {}
        self.command: np.ndarray | None = None          # last command seen on the controller topic
        self.episode = -1
        self.running = False
        self.step = 0
        self.last_stamp: int | None = None     # joint_states stamp of the last period (stepped or skipped)
        self._count = 0                        # joint_states messages seen (decimation)
        self._seen_stamp: int | None = None    # newest joint_states stamp seen, across episodes
        self.prev_state: RobotState | None = None
        self.episode_return = 0.0
        self._probe()
        if not self.settings.start_paused:
            self._begin_episode()

    @property
    def obs_dim(self) -> int:
        return self.spec.size(self.d)

    # ------------------------------------------------------------------------------------------ configure probe
    def _neutral_state(self) -> RobotState:
        n = len(self.d.observed_joints)
        mid = np.array([(j.lower + j.upper) / 2 for j in self.d.joints] + [0.0] * len(self.d.passive_joints))
        odom = None
        if self.d.odometry_topic:
            odom = Odometry(np.array([0.0, 0.0, 1.3]), np.array([0.0, 0.0, 0.0, 1.0]), np.zeros(3), np.zeros(3))
        extra = {t: np.zeros(s) for t, s in self.spec.extra_topics.items()}
        return RobotState(0, mid, np.zeros(n), np.zeros(n), odometry=odom, extra=extra)

    def _probe(self) -> None:
        """The plugin on a neutral state (mid-range joints, upright, at rest): finite reward and observation, a
        (bool, str) fall answer. Anything else is a TaskError naming the plugin."""
        s = self._neutral_state()
        name = self.task.name
        try:
            self.task.reset(s)
            r = float(self.task.reward(s, s, np.asarray(self.d.safe_command)))
            fallen = self.task.fallen(s)
        except Exception as exc:  # noqa: BLE001 - a plugin may raise anything: one line at configure
            raise TaskError(f"task '{name}' failed on a neutral probe state ({type(exc).__name__}: {exc})") from None
        if not math.isfinite(r):
            raise TaskError(f"task '{name}' returned a non-finite reward ({r}) on a neutral probe state")
        if not (isinstance(fallen, tuple) and len(fallen) == 2):
            raise TaskError(f"task '{name}': fallen() must return (bool, reason), got {fallen!r}")
        obs = self.spec.build(s, np.zeros(self.d.act_dim))
        if not np.isfinite(obs).all():
            raise TaskError(f"task '{name}': the observation spec gives non-finite values on a neutral state")

    # ------------------------------------------------------------------------------------------ episodes
    def _begin_episode(self) -> None:
        self.episode += 1
        self.n.episodes += 1
        self.running = True
        self.step = 0
        self.last_stamp = None
        self.prev_state = None
        self.episode_return = 0.0

    def resume(self) -> bool:
        """Start the next episode (the operator's ``~/resume`` or a finished recovery). False if one is running."""
        if self.running:
            return False
        self._begin_episode()
        self.info(f"episode {self.episode} starts")
        return True

    def _end_episode(self, why: str) -> None:
        self.running = False
        self.n.returns.append(self.episode_return)
        self.info(f"episode {self.episode} over after {self.step + 1} steps ({why}), return "
                  f"{self.episode_return:.2f}; paused until resume")

    # ------------------------------------------------------------------------------------------ inputs
    def _refuse(self, counter: str, kind: str, text: str) -> None:
        setattr(self.n, counter, getattr(self.n, counter) + 1)
        self.report(kind, text)

    def on_imu(self, orientation_xyzw: Sequence[float], angular_velocity: Sequence[float],
               linear_acceleration: Sequence[float], now: float) -> None:
        q, w, a = _finite(orientation_xyzw, 4), _finite(angular_velocity, 3), _finite(linear_acceleration, 3)
        if q is None or w is None or a is None or not np.linalg.norm(q) > 1e-6:
            self._refuse("bad_imu", "imu", "imu with NaN/Inf or a zero quaternion: ignored")
            return
        self.imu = (now, q / np.linalg.norm(q), w, a)

    def on_odometry(self, position: Sequence[float], orientation_xyzw: Sequence[float],
                    linear_velocity: Sequence[float], angular_velocity: Sequence[float], now: float) -> None:
        p, q = _finite(position, 3), _finite(orientation_xyzw, 4)
        v, w = _finite(linear_velocity, 3), _finite(angular_velocity, 3)
        if p is None or q is None or v is None or w is None or not np.linalg.norm(q) > 1e-6:
            self._refuse("bad_odometry", "odometry", "odometry with NaN/Inf or a zero quaternion: ignored")
            return
        self.odometry = (now, Odometry(p, q / np.linalg.norm(q), v, w))

    def on_extra(self, topic: str, values: Sequence[float], now: float) -> None:
        size = self.spec.extra_topics.get(topic)
        v = _finite(values, size)
        if size is None or v is None:
            self._refuse("bad_extra", "extra", f"extra topic {topic}: expected {size} finite values")
            return
        self.extra[topic] = (now, v)

    def on_command(self, values: Sequence[float]) -> None:
        """The command last sent on the controller topic (controller order and units)."""
        v = _finite(values, self.d.act_dim)
        if v is None:
            self._refuse("bad_command", "command", f"controller command: expected {self.d.act_dim} finite values")
            return
        self.command = v

    def _joint_index(self, names: tuple[str, ...]) -> np.ndarray | None:
        """Index into the message for each observed joint, or None (reported once per name set)."""
        if names in self._index:
            return self._index[names]
        observed = self.d.observed_joints
        known = set(observed) | set(self.d.ignored_joints)
        missing = [j for j in observed if j not in names]
        extra = [j for j in names if j not in known]
        dup = len(set(names)) != len(names)
        idx = None
        if missing or extra or dup:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                    ([f"extra {', '.join(extra)}"] if extra else []) + (["duplicate names"] if dup else [])
            self.report("joints", f"joint_states names do not match robot '{self.d.name}' ({'; '.join(parts)}): "
                        "no steps from these messages (the actor holds its safe command); fix the description's "
                        "joints / passive_joints / ignored_joints")
        else:
            pos = {n: i for i, n in enumerate(names)}
            idx = np.array([pos[j] for j in observed], np.int64)
        if len(self._index) < 64:
            self._index[names] = idx
        return idx

    def on_joint_states(self, names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                        effort: Sequence[float], stamp_ns: int, now: float) -> StepOut | None:
        """A joint_states message (any joint order). Returns the env step to publish, or None."""
        stamp_ns = int(stamp_ns)
        if self._seen_stamp is not None and stamp_ns <= self._seen_stamp:
            self.n.duplicates += 1       # not newer than the last message: a duplicate or a clock jump back
            return None
        self._seen_stamp = stamp_ns
        if not self.running:
            self.n.paused_inputs += 1
            return None
        self._count += 1
        if self._count % self.settings.decimation:
            self.n.decimated += 1        # a driver faster than the control rate
            return None
        names = tuple(str(x) for x in names)
        idx = self._joint_index(names)
        if idx is None:
            missing = any(j not in names for j in self.d.observed_joints)
            self._skip(stamp_ns, "missing_joints" if missing else "extra_joints")
            return None
        n = len(names)
        p, v = _finite(position, n), _finite(velocity, n)
        e = _finite(effort, n) if len(effort) else np.zeros(n)
        if p is None or v is None or e is None:
            self._skip(stamp_ns, "bad_joint_states", "joint_states", f"joint_states with NaN/Inf or sizes that do not "
                       f"match its {n} names (position {len(position)}, velocity {len(velocity)}, effort "
                       f"{len(effort)}): no step")
            return None
        state = RobotState(stamp_ns, p[idx], v[idx], e[idx])
        if not self._attach_inputs(state, now):
            self._skip(stamp_ns)
            return None
        return self._step(state)

    def _attach_inputs(self, state: RobotState, now: float) -> bool:
        """Fill imu / odometry / extra into ``state``; False (counted) if one the task needs is stale or missing."""
        if self.d.imu is not None:
            if self.imu is None or now - self.imu[0] > self.max_age:
                age = "never received" if self.imu is None else f"{(now - self.imu[0]) * 1e3:.0f} ms old"
                self._refuse("stale_imu", "stale", f"imu {age} (> one control period, "
                             f"{self.max_age * 1e3:.0f} ms): no step")
                return False
            _, state.orientation_xyzw, state.angular_velocity, state.linear_acceleration = self.imu
        if self.d.odometry_topic and (self.spec.needs_odometry or self.task.needs_odometry):
            if self.odometry is None or now - self.odometry[0] > self.max_age:
                self._refuse("stale_odometry", "stale", "odometry missing or older than one control period: no step")
                return False
            state.odometry = self.odometry[1]
        for topic in self.spec.extra_topics:
            got = self.extra.get(topic)
            if got is None or now - got[0] > self.max_age:
                self._refuse("stale_extra", "stale", f"extra topic {topic} missing or stale: no step")
                return False
            state.extra[topic] = got[1]
        return True

    def _periods_since_last(self, stamp_ns: int) -> int:
        """Control periods from the last period's stamp to ``stamp_ns`` (1 unless the driver's stamps show a gap)."""
        gap = (stamp_ns - self.last_stamp) * 1e-9 / self.period
        return 1 if gap < GAP_PERIODS else int(round(gap))

    def _skip(self, stamp_ns: int, counter: str | None = None, kind: str = "", text: str = "") -> None:
        """An input refused for this period: no step; the period still counts (the actor's chain breaks)."""
        if counter is not None:
            if text:
                self._refuse(counter, kind, text)
            else:
                setattr(self.n, counter, getattr(self.n, counter) + 1)
        if self.last_stamp is not None:     # mid-episode: this period passes without a step
            periods = self._periods_since_last(stamp_ns)
            self.step += periods
            self.n.skipped_periods += periods
            self.last_stamp = stamp_ns
            self.prev_state = None          # no reward across a gap

    # ------------------------------------------------------------------------------------------ stepping
    def _step(self, state: RobotState) -> StepOut | None:
        if self.last_stamp is not None:
            periods = self._periods_since_last(state.stamp_ns)
            self.n.skipped_periods += periods - 1
            self.step += periods
        self.last_stamp = state.stamp_ns
        prev_a = (self.mapping.inverse(self.command) if self.command is not None
                  else np.zeros(self.d.act_dim)) if self.spec.needs_command else None
        try:
            obs = self.spec.build(state, prev_a)
            if self.step == 0:
                self.task.reset(state)
                reward = 0.0
            else:
                reward = float(self.task.reward(self.prev_state or state, state, self.command))
            fell, why = self.task.fallen(state)
        except Exception as exc:  # noqa: BLE001 - a plugin may raise anything: counted, no step
            self._refuse("task_errors", "task", f"task '{self.task.name}' raised {type(exc).__name__}: {exc}")
            self.prev_state = None
            return None
        if not math.isfinite(reward) or not np.isfinite(obs).all():
            self._refuse("task_errors", "task", f"task '{self.task.name}' gave a non-finite reward/observation at "
                         f"episode {self.episode} step {self.step}: no step")
            self.prev_state = None
            return None
        truncated = not fell and self.step + 1 >= self.limit_steps
        out = StepOut(self.episode, self.step, obs, reward, bool(fell), truncated, state.stamp_ns,
                      why if fell else ("time limit" if truncated else ""))
        self.prev_state = state
        self.episode_return += reward
        self.n.steps += 1
        if out.final:
            self._end_episode(out.why)
        return out
