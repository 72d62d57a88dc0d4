"""Training outputs a person reads: evaluations.csv and learning_curve.png (written atomically)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from .core.checkpoint import atomic_write_bytes

EVAL_FIELDS = ("step", "train_step", "updates", "return_mean", "return_std", "episode_length_mean", "episodes",
               "wall_time_s")


def write_evaluations_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EVAL_FIELDS, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow(row)
    atomic_write_bytes(path, buf.getvalue().encode())


def read_evaluations_csv(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_learning_curve(path: str | Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    """Evaluation return (mean ± std) against environment steps, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if rows:
        x = [r["step"] for r in rows]
        m = [r["return_mean"] for r in rows]
        s = [r["return_std"] for r in rows]
        ax.plot(x, m, marker="o", ms=3, label="evaluation return (mean)")
        ax.fill_between(x, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.25, label="± std")
        ax.legend(loc="lower right")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
