"""The learning campaign, one command: Symphony (headless trainer, scaled-down S3) beside SB3 SAC on gymnasium MuJoCo
tasks, same seeds, step budgets and evaluation protocol; then remedy variants. bench/learning/README.md explains the
preset, the budgets and why.

    python bench/learning/campaign.py                 # run the plan (resumable), one run at a time
    python bench/learning/campaign.py --list          # the plan and each run's state
    python bench/learning/campaign.py --only IP       # runs whose name contains a substring (repeatable)

Each run is a subprocess writing into ``<runs>/<name>/`` (default runs directory /work/campaign_runs, outside git):
evaluations.csv, learning_curve.png, log.txt, run.json (the command, wall time, ms per env step, exit code) and DONE
when it finished. Resumable: a run with DONE is skipped; an interrupted Symphony run continues from its newest
checkpoint (``--resume``), an interrupted SAC run restarts from scratch. One log line per finished run goes to
stdout and ``<runs>/campaign.log``. Stop it with Ctrl-C or SIGTERM (``kill <pid>``): the running child is stopped
cleanly (a Symphony run checkpoints first); the same command continues.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
DEFAULT_RUNS = Path("/work/campaign_runs")

# The scaled-down S3 for this 2-core CPU (README.md "Preset"): full S3 runs ~3.7 env steps/s here.
SCALED_S3 = ("hidden_dim=128", "heads_per_critic=32", "batch_size=96")
# The evaluation protocol of the campaign, both algorithms (README.md "Protocol"). n_exp is Symphony's exploration
# length; for SAC it only sets where evaluations begin, so that both have points at the same steps.
PROTOCOL = ("eval_every=1000", "eval_episodes=5", "n_exp=2560")
TASKS = {"IP": "InvertedPendulum-v5", "HC": "HalfCheetah-v5", "W": "Walker2d-v5"}
BUDGET = {"IP": 10_000, "HC": 20_000, "W": 20_000}
SEEDS = (0, 1)
# remedy variants (Symphony only): name -> (extra config overrides, extra trainer arguments)
VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "base": ((), ()),
    "rate0.5": ((), ("--action-rate-penalty", "0.5")),          # action-rate term in the training reward
    "amax2.87": (("a_max=2.868",), ()),   # a_max = 1/tanh(0.364): at Swaddling's sigma the noise-free action reaches
                                          # the bound (rescale mode clips the command to it)
    "noisepi": (("noise_clip=3.141592653589793",), ()),         # SE's smaller noise clamp(N, +-pi)/pi
    "lr1e-3": (("lr=0.001",), ()),                               # the small-network lr of test/test_learning.py
    "lr1e-3+rate1": (("lr=0.001",), ("--action-rate-penalty", "1.0")),   # lr 1e-3 and the action-rate term
}


@dataclass(frozen=True)
class Run:
    """One planned run: ``task`` key of TASKS, ``algo`` "symphony" | "sac", ``variant`` key of VARIANTS."""
    task: str
    algo: str
    seed: int
    steps: int
    variant: str = "base"
    extra_sets: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.task}_{self.algo}_{self.variant}_s{self.seed}"

    def command(self, out: Path, resume: bool) -> list[str]:
        env = TASKS[self.task]
        sets = PROTOCOL + (() if self.algo == "sac" else SCALED_S3 + VARIANTS[self.variant][0]) + self.extra_sets
        set_args = [a for s in sets for a in ("--set", s)]
        common = ["--env", env, "--seed", str(self.seed), "--max-steps", str(self.steps), "--out", str(out)]
        if self.algo == "sac":
            return [PY, str(ROOT / "bench" / "learning" / "sac_peer.py"), *common, *set_args]
        return [PY, "-m", "symphony_ros.cli", "train", "--headless", "--device", "cpu", "--action-mode", "rescale",
                "--no-progress", "--preset", "s3", *common, *set_args, *VARIANTS[self.variant][1],
                *(["--resume"] if resume else [])]


def plan() -> list[Run]:
    """Baseline pairs first (task by task, seed by seed, Symphony then SAC); then the remedies on InvertedPendulum
    (seed 0 of the single changes, then what they showed: lr 1e-3, and lr 1e-3 with the action-rate term); then the
    reach and learning-rate variants on HalfCheetah and Walker2d (lr 1e-3 before a second reach seed)."""
    runs = [Run(t, algo, s, BUDGET[t]) for t in TASKS for s in SEEDS for algo in ("symphony", "sac")]
    ip = [(0, "rate0.5"), (0, "amax2.87"), (0, "noisepi"), (0, "lr1e-3"), (1, "rate0.5"), (1, "lr1e-3"),
          (0, "lr1e-3+rate1"), (1, "lr1e-3+rate1"), (1, "amax2.87"), (1, "noisepi")]
    runs += [Run("IP", "symphony", s, BUDGET["IP"], v) for s, v in ip]
    runs += [Run("HC", "symphony", 0, BUDGET["HC"], v) for v in ("amax2.87", "lr1e-3")]
    runs += [Run("W", "symphony", 0, BUDGET["W"], "amax2.87")]
    runs += [Run("HC", "symphony", 1, BUDGET["HC"], "lr1e-3"), Run("W", "symphony", 0, BUDGET["W"], "lr1e-3"),
             Run("HC", "symphony", 1, BUDGET["HC"], "amax2.87")]
    return runs


def state(run: Run, runs_dir: Path) -> str:
    d = runs_dir / run.name
    if (d / "DONE").exists():
        return "done"
    return "partial" if d.exists() else "todo"


def environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MUJOCO_GL="disable",
               PYTHONPATH=str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    return env


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout
        return rev.strip() + ("-dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


def start(run: Run, runs_dir: Path) -> tuple[subprocess.Popen, float, list[str], object]:
    d = runs_dir / run.name
    resume = run.algo == "symphony" and (d / "checkpoints").is_dir() and any((d / "checkpoints").iterdir())
    if d.exists() and not resume:
        shutil.rmtree(d)              # SAC (or a run without a checkpoint) restarts from scratch
    d.mkdir(parents=True, exist_ok=True)
    cmd = run.command(d, resume)
    log = open(d / "log.txt", "a")
    log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=environment(), stdout=log, stderr=subprocess.STDOUT)
    return proc, time.time(), cmd, log


def finish(run: Run, runs_dir: Path, rc: int, t0: float, cmd: list[str], rev: str) -> str:
    d = runs_dir / run.name
    wall = time.time() - t0
    info = dict(name=run.name, task=TASKS[run.task], algo=run.algo, seed=run.seed, steps=run.steps,
                variant=run.variant, rc=rc, process_wall_s=round(wall, 1), git=rev,
                command=" ".join(cmd).replace(str(ROOT) + "/", "").replace(PY, "python"))
    prev = {}
    if (d / "run.json").exists():
        try:
            prev = json.loads((d / "run.json").read_text())
        except ValueError:
            prev = {}
    rows = []
    if (d / "evaluations.csv").exists():
        sys.path.insert(0, str(ROOT))
        from symphony_ros.training.evaluation import read_evaluations_csv
        rows = read_evaluations_csv(d / "evaluations.csv")
    if rows:   # the run's own clock (resumes included), evaluations included, both algorithms alike
        info["wall_time_s"] = rows[-1]["wall_time_s"]
        info["ms_per_step"] = round(1000 * rows[-1]["wall_time_s"] / max(rows[-1]["step"], 1), 3)
        info["final_return"] = rows[-1]["return_mean"]
    info = {**prev, **info}
    (d / "run.json").write_text(json.dumps(info, indent=1))
    if rc == 0:
        (d / "DONE").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    line = (f"{time.strftime('%H:%M:%S')} {run.name}: rc {rc}, {wall:.0f} s, "
            f"{info.get('ms_per_step', float('nan')):.2f} ms/env step, final return "
            f"{info.get('final_return', float('nan')):.1f}")
    with open(runs_dir / "campaign.log", "a") as f:
        f.write(line + "\n")
    return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="runs directory (outside git)")
    p.add_argument("--max-parallel", type=int, default=1, help="runs at a time (1 on a 2-core CPU)")
    p.add_argument("--only", action="append", default=[], help="run names containing this substring (repeatable)")
    p.add_argument("--list", action="store_true", help="print the plan and each run's state, run nothing")
    p.add_argument("--budget-scale", type=float, default=1.0,
                   help="multiply every step budget (a smoke test: 0.3; use a separate --runs directory)")
    a = p.parse_args(argv)
    runs = [r for r in plan() if not a.only or any(o in r.name for o in a.only)]
    if a.budget_scale != 1.0:
        runs = [dataclasses.replace(r, steps=max(1, int(r.steps * a.budget_scale))) for r in runs]
    a.runs.mkdir(parents=True, exist_ok=True)
    if a.list:
        for r in runs:
            cmd = " ".join(r.command(Path("OUT"), False)[1:])
            print(f"{state(r, a.runs):8s} {r.name:32s} {r.steps:7d} steps  {cmd}")
        return 0
    todo = [r for r in runs if state(r, a.runs) != "done"]
    rev = git_rev()
    print(f"{time.strftime('%H:%M:%S')} campaign: {len(todo)} of {len(runs)} runs to do, git {rev}", flush=True)
    active: list[tuple[Run, subprocess.Popen, float, list[str], object]] = []

    def interrupt(signum, frame) -> None:   # also when started in the background, where SIGINT is ignored
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    try:
        while todo or active:
            while todo and len(active) < max(1, a.max_parallel):
                r = todo.pop(0)
                active.append((r, *start(r, a.runs)))
                print(f"{time.strftime('%H:%M:%S')} started {r.name}", flush=True)
            time.sleep(2)
            for item in list(active):
                r, proc, t0, cmd, log = item
                if proc.poll() is not None:
                    log.close()
                    active.remove(item)
                    print(finish(r, a.runs, proc.returncode, t0, cmd, rev), flush=True)
    except KeyboardInterrupt:
        for r, proc, *_ in active:
            proc.terminate()          # the trainer checkpoints on SIGTERM/SIGINT; --resume continues it
            proc.wait()
        print("interrupted: rerun the same command to continue", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
