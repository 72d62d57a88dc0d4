"""The actor's input x built from an observation: one rule, shared by acting, storing and evaluation (numpy only, so
an exported policy runs without torch)."""
from __future__ import annotations

import numpy as np


def policy_input(obs: np.ndarray, prev_action: np.ndarray | None) -> np.ndarray:
    """The actor's input x: the observation (S,), with the previous action (d,) prepended when the config's
    ``prev_action_in_obs`` is on (S2~ code; zeros at the start of an episode). float32 (S,) or (d + S,)."""
    obs = np.asarray(obs, dtype=np.float32).reshape(-1)
    if prev_action is None:
        return obs
    return np.concatenate([np.asarray(prev_action, dtype=np.float32).reshape(-1), obs])
