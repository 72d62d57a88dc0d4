"""The Fading Replay Buffer (docs/algorithm.md#replay-buffer).

* Storage is one packed, preallocated tensor on the learner's device, rows ``[s, a, r̂, s', g]`` with
  ``g = γ·(1 − terminated)``; float32, or float16 (ED).
* Exploration: the first ``n_exp`` transitions are stored raw. :meth:`norm_fill` then freezes the reward scale
  ``r̄ₙ = max(mean|r|, ε)``, divides the stored rewards by it and tiles the exploration block ``times`` times to fill
  all ``N = n_exp·times`` slots.
* Sampling: the k-th oldest slot (k = 0 oldest) is drawn with probability ∝ f(k/N) of a rank-weight family, through a
  cached inverse CDF (one ``searchsorted`` per batch, never a multinomial over N weights).
* Insertion is O(1): a circular pointer marks the oldest slot. A terminal at the pointer is skipped (re-aged to the
  second-newest rank, exactly like the reference's roll-by-2) up to ``terminal_survival_cycles`` times (−1 =
  forever, S3). The skip counter is an integer array, so it works whatever the storage dtype.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .rank_weights import replay_sampling_weights
from .storage import InvalidTransition, Transition

_DTYPES = {"float32": torch.float32, "float16": torch.float16}


class FadingReplayBuffer:
    """Args: obs_dim S, act_dim d; n_exp, times (capacity N = n_exp·times); ``family``/``power`` of the sampling
    weights; ``terminal_survival_cycles``; ``dtype`` "float32" | "float16"; ``device``; ``gamma``."""

    def __init__(self, obs_dim: int, act_dim: int, n_exp: int, times: int, *, family: str = "tanh",
                 power: float = float(np.e), terminal_survival_cycles: int = -1, dtype: str = "float32",
                 device: str | torch.device = "cpu", gamma: float = 0.99, reward_scale_eps: float = 1e-8) -> None:
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.n_exp, self.times = int(n_exp), int(times)
        self.capacity = self.n_exp * self.times
        self.family, self.power = family, float(power)
        self.terminal_survival_cycles = int(terminal_survival_cycles)
        self.dtype_name = dtype
        self.dtype = _DTYPES[dtype]
        self.device = torch.device(device)
        self.gamma = float(gamma)
        self.reward_scale_eps = float(reward_scale_eps)
        S, d = self.obs_dim, self.act_dim
        # column slices of a packed row [s, a, r̂, s', g]
        self._cols = (slice(0, S), slice(S, S + d), slice(S + d, S + d + 1), slice(S + d + 1, 2 * S + d + 1),
                      slice(2 * S + d + 1, 2 * S + d + 2))
        self.width = 2 * S + d + 2
        self.data = torch.zeros((self.capacity, self.width), dtype=self.dtype, device=self.device)
        self.terminal = np.zeros(self.capacity, dtype=bool)          # host mirror: no device sync per insert
        self.skips = np.zeros(self.capacity, dtype=np.int32)         # times the pointer skipped this terminal
        self.length = 0
        self._ptr_t = torch.zeros((), dtype=torch.long, device=self.device)   # device mirror (graph-capturable)
        self.ptr = 0            # oldest slot once filled
        self.filled = False     # norm_fill done: reward scale frozen, sampling enabled
        self.reward_scale = 1.0
        self.inserted = 0       # transitions ever stored
        self._cdf: torch.Tensor | None = None

    # ------------------------------------------------------------------ properties
    @property
    def ptr(self) -> int:
        """Slot of the oldest transition once filled (age rank 0)."""
        return self._ptr

    @ptr.setter
    def ptr(self, value: int) -> None:
        self._ptr = int(value)
        self._ptr_t.fill_(self._ptr)

    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()

    # ------------------------------------------------------------------ insertion
    def pack(self, t: Transition) -> torch.Tensor:
        """One validated :class:`~symphony_ros.core.storage.Transition` as a storage row (CPU): [s, a, r/r̄ₙ, s', g].
        The storage rules (core/storage.py) already bound every value; the one thing left to refuse is a normalised
        reward beyond what the storage dtype holds (float16)."""
        scale = self.reward_scale if self.filled else 1.0
        g = 0.0 if t.terminated else self.gamma
        row = torch.cat([torch.from_numpy(t.obs), torch.from_numpy(t.action), torch.tensor([t.reward / scale]),
                         torch.from_numpy(t.next_obs), torch.tensor([g])]).to(self.dtype)
        if self.dtype == torch.float16 and not bool(torch.isfinite(row).all()):
            raise InvalidTransition("reward / reward scale is beyond float16 range")
        return row

    def add(self, t: Transition) -> int:
        """Store one transition; returns the slot written. During exploration the first ``n_exp`` fill slots
        0..n_exp-1; afterwards (once :meth:`norm_fill` ran) the oldest slot is overwritten, a terminal there being
        skipped up to ``terminal_survival_cycles`` times. InvalidTransition leaves the buffer unchanged."""
        row = self.pack(t)
        if not self.filled:
            if self.length >= self.n_exp:
                raise RuntimeError("the exploration block is full: norm_fill() must run before the next add "
                                   "(SymphonyAgent.observe does this)")
            slot = self.length
            self._write(slot, row, t.terminated)
            self.length += 1
            return slot
        slot = self.ptr
        if self.terminal[slot] and (self.terminal_survival_cycles < 0 or
                                    self.skips[slot] < self.terminal_survival_cycles):
            self.skips[slot] += 1                   # keep the terminal: it becomes the second-newest rank
            slot = (slot + 1) % self.capacity
        self._write(slot, row, t.terminated)
        self.ptr = (slot + 1) % self.capacity
        return slot

    def _write(self, slot: int, row: torch.Tensor, terminated: bool) -> None:
        self.data[slot].copy_(row, non_blocking=False)
        self.terminal[slot] = terminated
        self.skips[slot] = 0
        self.inserted += 1

    def norm_fill(self) -> float:
        """Freeze r̄ₙ = max(mean|r|, ε) over the stored exploration data, normalise its rewards and tile it to fill
        the whole buffer (exactly ``times`` copies when n_exp transitions are stored). Returns r̄ₙ."""
        if self.filled:
            return self.reward_scale
        if self.length == 0:
            raise RuntimeError("norm_fill needs at least one stored transition")
        L = self.length
        r_col = self._cols[2]
        self.reward_scale = max(float(self.data[:L, r_col].float().abs().mean()), self.reward_scale_eps)
        self.data[:L, r_col] = (self.data[:L, r_col].float() / self.reward_scale).to(self.dtype)
        src = torch.arange(self.capacity, device=self.device) % L
        self.data[L:] = self.data.index_select(0, src[L:])
        src_np = np.arange(self.capacity) % L
        self.terminal[:] = self.terminal[src_np]
        self.skips[:] = 0
        self.length = self.capacity
        self.ptr = 0
        self.filled = True
        self._cdf = None
        return self.reward_scale

    # ------------------------------------------------------------------ sampling
    def sampling_cdf(self) -> torch.Tensor:
        """Cached cumulative age-rank probabilities (N,), float64 on the device (k = 0 oldest)."""
        if self._cdf is None:
            p = replay_sampling_weights(self.capacity, self.family, self.power)
            cdf = torch.cumsum(p, 0)
            cdf[-1] = 1.0
            self._cdf = cdf.to(self.device)
        return self._cdf

    def sample_ranks(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Age ranks (0 = oldest) drawn by inverse CDF. Shape (B,), int64 on the device."""
        u = torch.rand(batch_size, dtype=torch.float64, device=self.device, generator=generator)
        return torch.searchsorted(self.sampling_cdf(), u, right=True).clamp_(max=self.capacity - 1)

    def sample(self, batch_size: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(s (B,S), a (B,d), r̂ (B,1), s' (B,S), g (B,1)) as float32 on the device."""
        if not self.filled:
            raise RuntimeError("the buffer samples only after norm_fill (end of the exploration phase)")
        slots = (self.sample_ranks(batch_size, generator) + self._ptr_t) % self.capacity
        rows = self.data.index_select(0, slots).float()
        return tuple(rows[:, c] for c in self._cols)  # type: ignore[return-value]

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return dict(obs_dim=self.obs_dim, act_dim=self.act_dim, n_exp=self.n_exp, times=self.times,
                    dtype=self.dtype_name, data=self.data[: self.length].cpu(),
                    terminal=torch.from_numpy(self.terminal[: self.length].copy()),
                    skips=torch.from_numpy(self.skips[: self.length].copy()),
                    length=self.length, ptr=self.ptr, filled=self.filled, reward_scale=self.reward_scale,
                    inserted=self.inserted)

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k in ("obs_dim", "act_dim", "n_exp", "times"):
            if int(sd[k]) != getattr(self, k):
                raise ValueError(f"replay buffer {k} mismatch: checkpoint {sd[k]} vs configured {getattr(self, k)}")
        if sd["dtype"] != self.dtype_name:
            raise ValueError(f"replay buffer dtype mismatch: checkpoint {sd['dtype']} vs configured {self.dtype_name}")
        L = int(sd["length"])
        self.data.zero_()
        self.data[:L] = sd["data"].to(self.device, self.dtype)
        self.terminal[:] = False
        self.skips[:] = 0
        self.terminal[:L] = sd["terminal"].numpy()
        self.skips[:L] = sd["skips"].numpy()
        self.length, self.ptr, self.filled = L, int(sd["ptr"]), bool(sd["filled"])
        self.reward_scale, self.inserted = float(sd["reward_scale"]), int(sd["inserted"])
        self._cdf = None
