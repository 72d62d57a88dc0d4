"""The campaign's report: bench/results/learning/REPORT.md (the exact commands, one table), summary.json, PNG curves
with seed spread, and each run's small files (evaluations.csv, run.json) under runs/<run>/.

Usage: ``python bench/learning/report.py [--runs /work/campaign_runs] [--out bench/results/learning]``. Only finished
runs (DONE) enter the table; every figure comes from the runs' evaluations.csv (one definition of each command figure:
symphony_ros/control/telemetry.py, written by the shared Evaluator for both algorithms).

Table columns, per task / algorithm / variant over its seeds: mean and (min..max) of the final evaluation return and
of the best one; the TRAINING-time command figures (what the env received while learning, exploration noise and the
zero-policy window included) as the mean over the learning-phase windows (each evaluation row's window since the
previous evaluation, rows with updates > 0 and at least two commands: Symphony's exploration window is left out,
SAC's first window includes its 100 random steps); the EVALUATION figures of the final evaluation (noise-free
policy); σ at the final evaluation; wall time per env step (the run's clock over its steps, evaluations included).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from symphony_ros.training.evaluation import read_evaluations_csv  # noqa: E402

FIGS = ("saturation", "abs_delta", "hf_share", "reach", "sign_flips")
TASK_ORDER = ("InvertedPendulum-v5", "HalfCheetah-v5", "Walker2d-v5")


def load_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Finished runs: run.json plus their evaluation rows."""
    out = []
    for d in sorted(runs_dir.iterdir()):
        if not (d / "DONE").exists() or not (d / "evaluations.csv").exists():
            continue
        info = json.loads((d / "run.json").read_text())
        rows = read_evaluations_csv(d / "evaluations.csv")
        if rows:
            out.append(dict(info, rows=rows, dir=d))
    return out


def run_figures(run: dict[str, Any]) -> dict[str, float]:
    """One run's table figures (see the module docstring)."""
    rows = run["rows"]
    # learning-phase windows with at least one command pair (the run's last row can be a 1-command window)
    learning = [r for r in rows if r["updates"] > 0 and math.isfinite(r.get("train_abs_delta", math.nan))] or rows
    fin = rows[-1]
    out = dict(final=fin["return_mean"], best=max(r["return_mean"] for r in rows), ms_per_step=run.get("ms_per_step"))
    for k in FIGS:
        vals = [r[f"train_{k}"] for r in learning if math.isfinite(r.get(f"train_{k}", math.nan))]
        out[f"train_{k}"] = float(np.mean(vals)) if vals else math.nan
        out[f"eval_{k}"] = fin.get(f"eval_{k}", math.nan)
    out["sigma"] = fin.get("sigma_mean", math.nan)
    return out


def fmt(values: list[float], digits: int = 0) -> str:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return "–"
    m = float(np.mean(v))
    if len(v) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({min(v):.{digits}f}..{max(v):.{digits}f})"


def group_key(run: dict[str, Any]) -> tuple[str, str, str]:
    return run["task"], run["algo"], run["variant"]


def plot_task(path: Path, task: str, groups: dict[tuple, list[dict]], keys: list[tuple]) -> None:
    """Return and evaluation |Δa| against env steps: mean over seeds, band = min..max over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns (a 1-command last window) plot as gaps
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=70)
    for key in keys:
        runs = groups[key]
        label = f"{key[1]} {key[2]} ({len(runs)} seeds)"
        steps = sorted(set.intersection(*[{r["step"] for r in run["rows"]} for run in runs]))
        for ax, col in zip(axes, ("return_mean", "eval_abs_delta", "train_abs_delta")):
            ys = np.array([[next(r[col] for r in run["rows"] if r["step"] == s) for s in steps] for run in runs])
            mean = np.nanmean(ys, axis=0)
            ln, = ax.plot(steps, mean, marker="o", ms=2, label=label)
            if len(runs) > 1:
                ax.fill_between(steps, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), alpha=0.2, color=ln.get_color())
    axes[0].set_ylabel("evaluation return")
    axes[1].set_ylabel("evaluation mean |Δa| / range")
    axes[2].set_ylabel("training mean |Δa| / range")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{task}: mean over seeds, band = min..max over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("/work/campaign_runs"))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "learning")
    a = p.parse_args()
    runs = load_runs(a.runs)
    a.out.mkdir(parents=True, exist_ok=True)
    for run in runs:                               # the small files only; no checkpoints in git
        dst = a.out / "runs" / run["dir"].name
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("evaluations.csv", "run.json"):
            shutil.copy2(run["dir"] / f, dst / f)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[group_key(run)].append(run)
    order = sorted(groups, key=lambda k: (TASK_ORDER.index(k[0]) if k[0] in TASK_ORDER else 99, k[2] != "base",
                                          k[1] != "symphony", k[2]))
    summary, lines = [], []
    cols = ("task", "algo", "variant", "seeds", "steps", "final return", "best return", "train sat", "train \\|Δa\\|",
            "train HF", "train reach", "eval sat", "eval \\|Δa\\|", "eval HF", "eval reach", "eval flips", "σ",
            "ms/step")
    lines += ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for key in order:
        figs = [run_figures(r) for r in groups[key]]
        col = {k: [f[k] for f in figs] for k in figs[0]}
        steps = groups[key][0]["steps"]
        lines.append("| " + " | ".join([
            key[0], key[1], key[2], str(len(figs)), f"{steps:,}", fmt(col["final"]), fmt(col["best"]),
            fmt(col["train_saturation"], 3), fmt(col["train_abs_delta"], 3), fmt(col["train_hf_share"], 2),
            fmt(col["train_reach"], 2), fmt(col["eval_saturation"], 3), fmt(col["eval_abs_delta"], 4),
            fmt(col["eval_hf_share"], 2), fmt(col["eval_reach"], 2), fmt(col["eval_sign_flips"], 2),
            fmt(col["sigma"], 3), fmt(col["ms_per_step"], 1)]) + " |")
        summary.append(dict(task=key[0], algo=key[1], variant=key[2], steps=steps,
                            seeds=[r["seed"] for r in groups[key]],
                            per_seed={str(r["seed"]): f for r, f in zip(groups[key], figs)}))
    pngs = []
    for task in sorted({k[0] for k in order}, key=lambda t: TASK_ORDER.index(t) if t in TASK_ORDER else 99):
        base = [k for k in order if k[0] == task and k[2] == "base"]
        short = task.split("-")[0]
        if base:
            plot_task(a.out / f"{short}.png", task, groups, base)
            pngs.append(f"{short}.png")
        variants = [k for k in order if k[0] == task and k[1] == "symphony"]
        if len(variants) > 1:
            plot_task(a.out / f"{short}_remedies.png", task + " (Symphony variants)", groups, variants)
            pngs.append(f"{short}_remedies.png")
    commands = [f"    {r['command']}" for r in sorted(runs, key=lambda r: r["name"])]
    readme = ROOT / "bench" / "learning" / "README.md"
    md = ["# Learning campaign: Symphony (scaled-down S3) beside SB3 SAC", "",
          "Generated by `python bench/learning/report.py` from the runs of `python bench/learning/campaign.py`;",
          f"preset, protocol and budgets: [{readme.relative_to(ROOT)}](../../learning/README.md); findings: "
          "[bench/learning/FINDINGS.md](../../learning/FINDINGS.md). Per-run files: `runs/<run>/`.", "",
          "Figures: return = mean over seeds, (min..max) over seeds. Command figures (symphony_ros/control/"
          "telemetry.py, means over joints, in the env's command units against its action bounds): sat = share "
          "within 5% of a bound, |Δa| = mean |a_t − a_{t−1}| / range, HF = power share above a quarter of the "
          "control rate, reach = max |a − centre| / half range, flips = share of steps crossing the centre. "
          "train = the commands the env received while learning (noise included; mean over the learning-phase "
          "windows between evaluations); eval = the final noise-free evaluation. σ = the actor's mean σ over the "
          "final evaluation's states. ms/step = the run's wall time per env step, evaluations included, one torch "
          "thread on a 2-core CPU shared with other work.", "", *lines, "",
          *[f"![{p}]({p})" for p in pngs], "", "## Exact commands", "",
          "The campaign (resumable; finished runs are skipped):", "",
          "    cd <checkout> && python bench/learning/campaign.py && python bench/learning/report.py", "",
          "Each run, as the campaign ran it (environment: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MUJOCO_GL=disable "
          "PYTHONPATH=<checkout>; `--out` was /work/campaign_runs/<run>):", "", *commands, ""]
    (a.out / "REPORT.md").write_text("\n".join(md))
    (a.out / "summary.json").write_text(json.dumps(dict(runs=len(runs), groups=summary), indent=1, default=float))
    print(f"{len(runs)} runs, {len(order)} groups -> {a.out / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
