"""The Fading Replay Buffer (docs/algorithm.md#replay-buffer).

* Storage is preallocated on the learner's device: ``data`` rows ``[s, a, s']`` in the storage dtype (float32, or
  float16 for ED), and ``scalars`` rows ``[r̂, g]`` with ``g = γ·(1 − terminated)``, always float32, so the reward
  and the discount are stored exactly whatever the storage dtype (fp16 would round γ = 0.99 to 0.990234).
* Exploration: the first ``n_exp`` transitions are stored raw. :meth:`norm_fill` then freezes the reward scale
  ``r̄ₙ = max(mean|r|, ε)``, divides the stored rewards by it and tiles the exploration block ``times`` times to fill
  all ``N = n_exp·times`` slots.
* Sampling: the k-th oldest slot (k = 0 oldest) is drawn with probability ∝ f(k/N) of a rank-weight family, through a
  cached inverse CDF (one ``searchsorted`` per batch, never a multinomial over N weights).
* Insertion is O(1): a circular pointer marks the oldest slot. A terminal at the pointer is skipped (re-aged to the
  second-newest rank, like the reference's roll-by-2) up to ``terminal_survival_cycles`` times (−1 = forever, S3).
  The skip counter is an integer array, so it works whatever the storage dtype.
* Persistence is incremental: every slot written (or whose skip counter changed) since the last save is marked in
  :attr:`dirty`; :class:`symphony_ros.core.buffer_store.BufferStore` writes only those
  (docs/algorithm.md#replay-storage).
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
    weights; ``terminal_survival_cycles``; ``dtype`` "float32" | "float16" (observations and actions); ``device``;
    ``gamma``."""

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
        self._cols = (slice(0, S), slice(S, S + d), slice(S + d, 2 * S + d))   # s, a, s' in ``data``
        self.width = 2 * S + d
        self.data = torch.zeros((self.capacity, self.width), dtype=self.dtype, device=self.device)
        self.scalars = torch.zeros((self.capacity, 2), dtype=torch.float32, device=self.device)   # r̂, g
        self.terminal = np.zeros(self.capacity, dtype=bool)          # host mirror: no device sync per insert
        self.skips = np.zeros(self.capacity, dtype=np.int32)         # times the pointer skipped this terminal
        self.dirty = np.zeros(self.capacity, dtype=bool)             # changed since the last (incremental) save
        self.length = 0
        self._ptr_t = torch.zeros((), dtype=torch.long, device=self.device)   # device mirror (graph-capturable)
        self.ptr = 0            # oldest slot once filled
        self.filled = False     # norm_fill done: reward scale frozen, sampling enabled
        self.fill_length = 0    # exploration rows the filled buffer was tiled from (0 before norm_fill)
        self.reward_scale = 1.0
        self.inserted = 0       # transitions ever stored
        self.fill_block: dict[str, torch.Tensor] | None = None   # normalised exploration rows, until saved
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
        return self.data.numel() * self.data.element_size() + self.scalars.numel() * 4

    def row_bytes(self) -> int:
        """Bytes one stored transition takes (observations/actions in the dtype, reward and discount float32)."""
        return self.width * self.data.element_size() + 8

    def packed(self, slots: Any = slice(None)) -> torch.Tensor:
        """Rows as one float32 tensor ``[s, a, r̂, s', g]`` (for inspection and tests; sampling never builds it)."""
        d, sc = self.data[slots].float(), self.scalars[slots]
        S, A = self._cols[0], self._cols[1]
        return torch.cat([d[..., S], d[..., A], sc[..., :1], d[..., self._cols[2]], sc[..., 1:]], dim=-1)

    # ------------------------------------------------------------------ insertion
    def pack(self, t: Transition) -> tuple[torch.Tensor, torch.Tensor]:
        """One validated :class:`~symphony_ros.core.storage.Transition` as storage rows (CPU): ``[s, a, s']`` in the
        dtype and ``[r/r̄ₙ, g]`` in float32. The storage rules (core/storage.py) already bound every value."""
        scale = self.reward_scale if self.filled else 1.0
        row = torch.cat([torch.from_numpy(t.obs), torch.from_numpy(t.action), torch.from_numpy(t.next_obs)])
        row = row.to(self.dtype)
        sc = torch.tensor([t.reward / scale, 0.0 if t.terminated else self.gamma], dtype=torch.float32)
        if not (bool(torch.isfinite(row).all()) and bool(torch.isfinite(sc).all())):
            raise InvalidTransition(f"a value is beyond what {self.dtype_name} storage holds")
        return row, sc

    def add(self, t: Transition) -> int:
        """Store one transition; returns the slot written. During exploration the first ``n_exp`` fill slots
        0..n_exp-1; afterwards (once :meth:`norm_fill` ran) the oldest slot is overwritten, a terminal there being
        skipped up to ``terminal_survival_cycles`` times. InvalidTransition leaves the buffer unchanged."""
        row, sc = self.pack(t)
        if not self.filled:
            if self.length >= self.n_exp:
                raise RuntimeError("the exploration block is full: norm_fill() must run before the next add "
                                   "(SymphonyAgent.observe does this)")
            slot = self.length
            self._write(slot, row, sc, t.terminated)
            self.length += 1
            return slot
        slot = self.ptr
        if self.terminal[slot] and (self.terminal_survival_cycles < 0 or
                                    self.skips[slot] < self.terminal_survival_cycles):
            self.skips[slot] += 1                   # keep the terminal: it becomes the second-newest rank
            self.dirty[slot] = True
            slot = (slot + 1) % self.capacity
        self._write(slot, row, sc, t.terminated)
        self.ptr = (slot + 1) % self.capacity
        return slot

    def _write(self, slot: int, row: torch.Tensor, sc: torch.Tensor, terminated: bool) -> None:
        self.data[slot].copy_(row, non_blocking=False)
        self.scalars[slot].copy_(sc, non_blocking=False)
        self.terminal[slot] = terminated
        self.skips[slot] = 0
        self.dirty[slot] = True
        self.inserted += 1

    def norm_fill(self) -> float:
        """Freeze r̄ₙ = max(mean|r|, ε) over the stored exploration data, normalise its rewards and tile it to fill
        the whole buffer (exactly ``times`` copies when n_exp transitions are stored). Returns r̄ₙ."""
        if self.filled:
            return self.reward_scale
        if self.length == 0:
            raise RuntimeError("norm_fill needs at least one stored transition")
        L = self.length
        self.reward_scale = max(float(self.scalars[:L, 0].abs().mean()), self.reward_scale_eps)
        self._tile(L, self.reward_scale)
        self.dirty[:] = False          # the filled state is the exploration block + (L, r̄ₙ): a save writes it
        self.fill_block = self.rows(np.arange(L))   # kept (CPU) until a save has written it
        return self.reward_scale

    def _tile(self, L: int, scale: float) -> None:
        """Normalise rows 0..L-1 by ``scale`` and tile them over the whole buffer (the filled state)."""
        self.scalars[:L, 0] /= scale
        whole, rest = divmod(self.capacity, L)
        for t in (self.data, self.scalars):          # copies of rows 0..L-1, without a capacity-sized temporary
            t[L:whole * L].view(whole - 1, L, t.shape[1]).copy_(t[:L].unsqueeze(0).expand(whole - 1, L, t.shape[1]))
            if rest:
                t[whole * L:].copy_(t[:rest])
        self.terminal[:] = self.terminal[np.arange(self.capacity) % L]
        self.skips[:] = 0
        self.length = self.capacity
        self.ptr = 0
        self.filled = True
        self.fill_length = L
        self.reward_scale = float(scale)
        self._cdf = None

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
        sc = self.scalars.index_select(0, slots)
        s, a, s2 = (rows[:, c] for c in self._cols)
        return s, a, sc[:, :1], s2, sc[:, 1:]

    # ------------------------------------------------------------------ persistence
    def meta(self) -> dict[str, Any]:
        """The buffer's sizes and counters (what a save records beside the rows)."""
        return dict(obs_dim=self.obs_dim, act_dim=self.act_dim, n_exp=self.n_exp, times=self.times,
                    dtype=self.dtype_name, length=self.length, ptr=self.ptr, filled=self.filled,
                    fill_length=self.fill_length, reward_scale=self.reward_scale, inserted=self.inserted)

    def check_meta(self, meta: dict[str, Any]) -> None:
        """ValueError if saved rows of another buffer shape would be loaded into this one."""
        for k in ("obs_dim", "act_dim", "n_exp", "times"):
            if int(meta[k]) != getattr(self, k):
                raise ValueError(f"replay buffer {k} mismatch: checkpoint {meta[k]} vs configured {getattr(self, k)}")
        if meta["dtype"] != self.dtype_name:
            raise ValueError(f"replay buffer dtype mismatch: checkpoint {meta['dtype']} vs configured "
                             f"{self.dtype_name}")

    def rows(self, slots: np.ndarray) -> dict[str, torch.Tensor]:
        """The stored content of ``slots`` (CPU tensors), as :meth:`put_rows` takes it."""
        idx = torch.from_numpy(np.asarray(slots, dtype=np.int64))
        dev = idx.to(self.device)
        return dict(slots=idx, data=self.data.index_select(0, dev).cpu(),
                    scalars=self.scalars.index_select(0, dev).cpu(),
                    terminal=torch.from_numpy(self.terminal[slots].copy()),
                    skips=torch.from_numpy(self.skips[slots].copy()))

    def put_rows(self, rows: dict[str, torch.Tensor]) -> None:
        """Write saved rows back into their slots (restoring; marks nothing dirty)."""
        idx = rows["slots"].long()
        dev = idx.to(self.device)
        self.data.index_copy_(0, dev, rows["data"].to(self.device, self.dtype))
        self.scalars.index_copy_(0, dev, rows["scalars"].to(self.device, torch.float32))
        n = idx.numpy()
        self.terminal[n] = rows["terminal"].numpy()
        self.skips[n] = rows["skips"].numpy()

    def reset(self) -> None:
        """Empty (as constructed)."""
        self.data.zero_()
        self.scalars.zero_()
        self.terminal[:] = False
        self.skips[:] = 0
        self.dirty[:] = False
        self.length, self.ptr, self.filled, self.fill_length = 0, 0, False, 0
        self.reward_scale, self.inserted = 1.0, 0
        self.fill_block = None
        self._cdf = None

    def restore(self, meta: dict[str, Any], base: dict[str, torch.Tensor] | None,
                segments: list[dict[str, torch.Tensor]]) -> None:
        """Rebuild a saved state: ``base`` (the exploration block at norm_fill, already normalised) tiled when the
        buffer was filled, then ``segments`` (rows written later) in order, then the counters of ``meta``."""
        self.check_meta(meta)
        self.reset()
        if base is not None:
            L = int(meta["fill_length"])
            self.put_rows(base)
            self._tile(L, 1.0)                     # base rows are stored normalised: divide by 1
        for seg in segments:
            self.put_rows(seg)
        self.length, self.ptr, self.filled = int(meta["length"]), int(meta["ptr"]), bool(meta["filled"])
        self.fill_length = int(meta["fill_length"])
        self.reward_scale, self.inserted = float(meta["reward_scale"]), int(meta["inserted"])
        self._cdf = None

    def state_dict(self) -> dict[str, Any]:
        """The whole buffer in one dict (small buffers, exports; checkpoints use the incremental BufferStore)."""
        L = self.length
        return dict(self.meta(), data=self.data[:L].cpu(), scalars=self.scalars[:L].cpu(),
                    terminal=torch.from_numpy(self.terminal[:L].copy()),
                    skips=torch.from_numpy(self.skips[:L].copy()))

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.check_meta(sd)
        L = int(sd["length"])
        self.reset()
        data, scalars = sd["data"], sd.get("scalars")
        if scalars is None:   # symphony_ros <= 0.1.0 checkpoints: one packed row [s, a, r̂, s', g] in the dtype
            S, d = self.obs_dim, self.act_dim
            packed = data.float()
            scalars = torch.stack([packed[:, S + d], packed[:, -1]], dim=1)
            data = torch.cat([packed[:, :S + d], packed[:, S + d + 1:-1]], dim=1)
        slots = np.arange(L)
        self.put_rows(dict(slots=torch.from_numpy(slots), data=data, scalars=scalars,
                           terminal=sd["terminal"], skips=sd["skips"]))
        self.length, self.ptr, self.filled = L, int(sd["ptr"]), bool(sd["filled"])
        self.fill_length = int(sd.get("fill_length", self.n_exp if sd["filled"] else 0))
        self.reward_scale, self.inserted = float(sd["reward_scale"]), int(sd["inserted"])
