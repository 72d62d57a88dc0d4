"""Export for inference (`symphony-ros export --format onnx|torchscript|pt`) and the runtime policies.

Parity: every format against the torch Actor, max |Δ| <= 1e-5 over 1,000 random observations, deterministic and with
a fixed ε, on Humanoid dims with an S3-sized actor and on a tiny one. Metadata round trip, clear errors (CLI exit 2),
and that an ONNX / TorchScript policy loads without the training code (and ONNX without torch).
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import symphony_ros
from symphony_ros.control.inference import (OnnxPolicy, Policy, PolicyFileError, TorchActorPolicy, TorchScriptPolicy,
                                            load_policy)
from symphony_ros.core.policy import ActorPolicy
from symphony_ros.core.agent import SymphonyAgent
from symphony_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from symphony_ros.core.config import load_preset
from symphony_ros.core.export import ActorGraph, export_policy
from symphony_ros.core.export_format import (FORMAT_VERSION, METADATA_KEY, TORCHSCRIPT_EXTRA_FILE, detect_format,
                                             format_from_suffix)
from symphony_ros.core.networks import Actor
from symphony_ros.core.noise import bounded_noise, bounded_noise_numpy
from symphony_ros.core.policy import load_actor_file

# torch 2.13 marks torch.jit.save/load deprecated; TorchScript is still one of the export formats asked for
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5
N_OBS = 1000
VERSION = 4321                      # the source checkpoint's update count, carried into every export
# the learner and the training code: agent, replay buffer and its storage rules, loop schedule, optimizer, losses,
# the learner package and the training front-ends
TRAINING_PREFIXES = ("symphony_ros.core.agent", "symphony_ros.core.replay_buffer", "symphony_ros.core.storage",
                     "symphony_ros.core.schedule", "symphony_ros.core.optimizer", "symphony_ros.core.losses",
                     "symphony_ros.learner", "symphony_ros.training")


def _training_code(modules):
    return sorted(m for m in modules if m.startswith(TRAINING_PREFIXES))


def _humanoid_dims():
    import gymnasium as gym
    env = gym.make("Humanoid-v5")
    dims = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    return dims


SIZES = {"tiny": dict(preset="s3", over=dict(hidden_dim=32, heads_per_critic=8)),
         "s3_humanoid": dict(preset="s3", over={})}


def _training_checkpoint(path, preset, obs, act, over, seed=0):
    """A real training checkpoint (kind 'training', SymphonyAgent.state_dict) whose actor weights were moved off
    their initialisation (as training does), so the parity check is not run on near-zero outputs only."""
    cfg = load_preset(preset, dict(over, n_exp=400, buffer_times=1))
    agent = SymphonyAgent(obs, act, cfg, device="cpu", seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in agent.actor.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    agent.updates = VERSION
    save_checkpoint(path, dict(kind="training", agent=agent.state_dict()))
    return cfg


_BUILT: dict = {}


def _build(name, tmp_path_factory):
    """One training checkpoint of size ``name``, exported to all three formats with the Python API (once)."""
    if name not in _BUILT:
        size = SIZES[name]
        obs, act = _humanoid_dims() if name == "s3_humanoid" else (6, 2)
        d = tmp_path_factory.mktemp(name)
        cfg = _training_checkpoint(d / "ckpt.pt", size["preset"], obs, act, size["over"])
        files = {fmt: export_policy(d / "ckpt.pt", d / f"actor.{suffix}", fmt).path
                 for fmt, suffix in (("onnx", "onnx"), ("torchscript", "ts"), ("pt", "pt"))}
        actor, _, _ = load_actor_file(d / "ckpt.pt")
        _BUILT[name] = dict(name=name, dir=d, cfg=cfg, obs=obs, act=act, files=files, actor=actor.eval())
    return _BUILT[name]


@pytest.fixture(scope="module", params=list(SIZES))
def exported(request, tmp_path_factory):
    return _build(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _build("tiny", tmp_path_factory)


def _observations(obs_dim, seed=0):
    """1,000 observations at the scales a humanoid produces (unit normal, some at ×10 to reach saturation)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_OBS, obs_dim)).astype(np.float32)
    x[::4] *= 10.0
    return x


def _reference(actor, x, act_gain, noise_gain, eps):
    with torch.no_grad():
        return [t.numpy() for t in actor(torch.from_numpy(x), act=act_gain, noise=noise_gain,
                                         eps=torch.from_numpy(np.ascontiguousarray(eps)))]


def test_humanoid_v5_dims():
    assert _humanoid_dims() == (348, 17)


def test_eps_input_is_the_internal_draw_bit_for_bit():
    """Actor(s, act, noise) drawing ε with its generator == Actor(s, act, noise, eps=the same draw), bitwise."""
    actor = Actor(10, 3, 16).eval()
    s = torch.randn(64, 10)
    actor.generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        a_inside, sig, beta = actor(s, act=0.7, noise=0.4)
        eps = bounded_noise((64, 3), actor.noise_clip, generator=torch.Generator().manual_seed(5))
        a_given, sig2, beta2 = actor(s, act=0.7, noise=0.4, eps=eps)
        a_det = actor(s, act=1.0, noise=0.0)[0]
        a_det_tensor = actor(s, act=torch.ones(1), noise=torch.zeros(1), eps=torch.zeros(64, 3))[0]
    assert torch.equal(a_inside, a_given) and torch.equal(sig, sig2) and torch.equal(beta, beta2)
    assert torch.equal(a_det, a_det_tensor)
    assert not torch.equal(a_inside, a_det)


def test_numpy_bounded_noise_has_the_torch_distribution():
    clip = float(np.e)
    z = bounded_noise_numpy((400_000,), clip, np.random.default_rng(0))
    t = bounded_noise((400_000,), clip, generator=torch.Generator().manual_seed(0)).numpy()
    assert z.dtype == np.float32 and z.min() >= -1.0 and z.max() <= 1.0
    assert abs(z.std() - t.std()) < 3e-3 and abs(z.mean()) < 3e-3 and abs((np.abs(z) == 1).mean() - 0.0066) < 1e-3


def test_graph_parity_batch_of_1000_fixed_eps(exported):
    """The exported graphs run on the whole batch (dynamic batch dimension) equal the torch Actor in all outputs."""
    import onnxruntime as ort
    actor, x = exported["actor"], _observations(exported["obs"])
    eps = bounded_noise_numpy((N_OBS, exported["act"]), actor.noise_clip, np.random.default_rng(1))
    sess = ort.InferenceSession(str(exported["files"]["onnx"]), providers=["CPUExecutionProvider"])
    script = torch.jit.load(str(exported["files"]["torchscript"]))
    assert sess.get_inputs()[0].shape[0] == "batch" and sess.get_inputs()[3].shape[0] == "batch"
    largest = 0.0
    for act_gain, noise_gain in ((1.0, 0.0), (1.0, 1.0), (0.5, 0.3)):
        ref = _reference(actor, x, act_gain, noise_gain, eps)
        largest = max(largest, float(np.abs(ref[0]).max()))
        gains = dict(act_gain=np.array([act_gain], np.float32), noise_gain=np.array([noise_gain], np.float32))
        got_onnx = sess.run(None, dict(obs=x, eps=eps, **gains))
        with torch.no_grad():
            got_ts = [t.numpy() for t in script(torch.from_numpy(x), torch.tensor([act_gain]),
                                                 torch.tensor([noise_gain]), torch.from_numpy(eps))]
        for got in (got_onnx, got_ts):
            assert len(got) == 3
            for g, r in zip(got, ref):
                assert g.shape == r.shape == (N_OBS, exported["act"])
                assert np.abs(g - r).max() <= TOL
    assert largest > 0.75    # beyond tanh(1), the deterministic bound: large pre-activations are covered too


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt"])
def test_policy_parity_deterministic_and_noisy(exported, fmt):
    """load_policy(file).act, one observation per call as the actor runs it, against the torch Actor:
    deterministic (act 1, noise 0: deploy), then noisy (act 1, noise 1) with the ε the policy draws."""
    actor, x, d = exported["actor"], _observations(exported["obs"], seed=2), exported["act"]
    policy = load_policy(exported["files"][fmt], seed=11)
    assert isinstance(policy, Policy)
    assert isinstance(policy, {"onnx": OnnxPolicy, "torchscript": TorchScriptPolicy, "pt": TorchActorPolicy}[fmt])
    assert (policy.obs_dim, policy.act_dim, policy.version) == (exported["obs"], d, VERSION)

    assert TorchActorPolicy is ActorPolicy     # the torch backend IS core's acting forward pass, not a copy
    det = np.stack([policy.act(xi, act_gain=1.0, noise_gain=0.0) for xi in x])
    assert det.dtype == np.float32 and det.shape == (N_OBS, d)
    assert np.abs(det - _reference(actor, x, 1.0, 0.0, np.zeros((N_OBS, d), np.float32))[0]).max() <= TOL

    policy.reseed(11)
    noisy = np.stack([policy.act(xi, act_gain=1.0, noise_gain=1.0) for xi in x])
    if fmt == "onnx":     # numpy generator, one (1, d) draw per call
        rng = np.random.default_rng(11)
        eps = np.concatenate([bounded_noise_numpy((1, d), actor.noise_clip, rng) for _ in range(N_OBS)])
    else:                 # torch generator, as the actor node draws it
        g = torch.Generator().manual_seed(11)
        eps = torch.cat([bounded_noise((1, d), actor.noise_clip, generator=g) for _ in range(N_OBS)]).numpy()
    assert np.abs(noisy - _reference(actor, x, 1.0, 1.0, eps)[0]).max() <= TOL
    assert np.abs(noisy - det).max() > 0.05           # the noise is really applied
    assert np.abs(noisy).max() <= exported["cfg"].a_max

    policy.reseed(11)
    again = np.stack([policy.act(xi, act_gain=1.0, noise_gain=1.0) for xi in x[:20]])
    assert np.array_equal(again, noisy[:20])          # reseed restarts the ε sequence


def test_metadata_round_trip(exported):
    import onnx
    cfg, files = exported["cfg"], exported["files"]
    onnx_meta = json.loads({p.key: p.value for p in onnx.load(str(files["onnx"])).metadata_props}[METADATA_KEY])
    extra = {TORCHSCRIPT_EXTRA_FILE: ""}
    torch.jit.load(str(files["torchscript"]), _extra_files=extra)
    ts_meta = json.loads(extra[TORCHSCRIPT_EXTRA_FILE])
    payload = load_checkpoint(files["pt"], kind="actor")
    for fmt, meta in (("onnx", onnx_meta), ("torchscript", ts_meta), ("pt", payload["metadata"])):
        assert meta["format"] == fmt and meta["format_version"] == FORMAT_VERSION
        assert (meta["obs_dim"], meta["act_dim"], meta["hidden"]) == (exported["obs"], exported["act"],
                                                                     cfg.hidden_dim)
        assert meta["a_max"] == cfg.a_max and meta["noise_clip"] == cfg.noise_clip
        assert meta["preset"] == cfg.preset and meta["config"] == cfg.to_dict()
        assert meta["source_version"] == VERSION and meta["source"] == "ckpt.pt"
        assert meta["package_version"] == symphony_ros.__version__ and meta["prev_action_in_obs"] is False
        assert meta["inputs"] == ["obs", "act_gain", "noise_gain", "eps"]
        assert meta["outputs"] == ["action", "sigma", "beta"]
    assert payload["version"] == VERSION       # still today's actor file
    assert load_policy(files["onnx"]).metadata == onnx_meta and load_policy(files["torchscript"]).metadata == ts_meta


def test_formats_are_recognised_by_content_not_name(exported, tmp_path):
    for fmt, kind in (("onnx", "onnx"), ("torchscript", "torchscript"), ("pt", "checkpoint")):
        renamed = tmp_path / f"policy_{fmt}.bin"
        renamed.write_bytes(exported["files"][fmt].read_bytes())
        assert detect_format(renamed) == kind
        action = load_policy(renamed).act(np.zeros(exported["obs"], np.float32), act_gain=1.0, noise_gain=0.0)
        assert action.shape == (exported["act"],)
    assert detect_format(exported["dir"] / "ckpt.pt") == "checkpoint"
    assert format_from_suffix("a.onnx") == "onnx" and format_from_suffix("a.ts") == "torchscript"
    assert format_from_suffix("a.pt") == "pt" and format_from_suffix("actor") == "pt"


def test_export_from_an_actor_file(tiny, tmp_path):
    """An exported .pt actor file is itself a valid export source (same graph, same version)."""
    res = export_policy(tiny["files"]["pt"], tmp_path / "again.onnx")
    assert res.format == "onnx" and res.metadata["source_version"] == VERSION and res.metadata["source"] == "actor.pt"
    x = _observations(tiny["obs"])
    policy = load_policy(res.path)
    again = np.stack([policy.act(xi, act_gain=1.0, noise_gain=0.0) for xi in x[:100]])
    ref = _reference(tiny["actor"], x[:100], 1.0, 0.0, np.zeros((100, tiny["act"]), np.float32))[0]
    assert np.abs(again - ref).max() <= TOL


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "symphony_ros.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("symphony-ros: error:"), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_exports_each_format_with_the_format_from_the_suffix(tmp_path):
    _training_checkpoint(tmp_path / "ckpt.pt", "s3", 6, 2, dict(hidden_dim=32, heads_per_critic=8))
    for out, kind in (("a.onnx", "onnx"), ("a.ts", "torchscript"), ("a.pt", "checkpoint"), ("actor", "checkpoint")):
        r = _cli("export", str(tmp_path / "ckpt.pt"), "--out", str(tmp_path / "out" / out))
        assert r.returncode == 0, r.stderr
        assert "written to" in r.stdout and "Traceback" not in r.stderr
        assert detect_format(tmp_path / "out" / out) == kind
    r = _cli("export", str(tmp_path / "ckpt.pt"), "--format", "onnx", "--out", str(tmp_path / "forced.pt"))
    assert r.returncode == 0 and detect_format(tmp_path / "forced.pt") == "onnx"
    assert "max |Δ| vs the torch actor" in r.stdout
    assert load_checkpoint(tmp_path / "out" / "actor", kind="actor")["version"] == VERSION
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]   # no temp files left


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    _training_checkpoint(tmp_path / "ckpt.pt", "s3", 6, 2, dict(hidden_dim=32, heads_per_critic=8))
    good = (tmp_path / "ckpt.pt").read_bytes()
    old_out = tmp_path / "previous.onnx"
    old_out.write_bytes(b"previous export")

    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    _one_line_error(_cli("export", str(tmp_path / "truncated.pt"), "--out", str(old_out)), "truncated.pt", "damaged")
    (tmp_path / "garbage.pt").write_bytes(b"PK\x03\x04" + os.urandom(2000))
    _one_line_error(_cli("export", str(tmp_path / "garbage.pt"), "--out", str(old_out)), "garbage.pt")
    (tmp_path / "notes.txt").write_text("hello, not a checkpoint\n")
    _one_line_error(_cli("export", str(tmp_path / "notes.txt"), "--out", str(old_out)), "not a policy file")
    _one_line_error(_cli("export", str(tmp_path / "missing.pt"), "--out", str(old_out)), "does not exist")
    save_checkpoint(tmp_path / "broken.pt", dict(kind="training", agent=dict(config={"preset": "s3"})))
    _one_line_error(_cli("export", str(tmp_path / "broken.pt"), "--out", str(old_out)), "incompatible")
    save_checkpoint(tmp_path / "other.pt", dict(kind="replay", data=1))
    _one_line_error(_cli("export", str(tmp_path / "other.pt"), "--out", str(old_out)), "'replay'")
    r = _cli("export", str(tmp_path / "ckpt.pt"), "--out", str(tmp_path / "a.onnx"))
    assert r.returncode == 0, r.stderr
    _one_line_error(_cli("export", str(tmp_path / "a.onnx"), "--out", str(old_out)), "already a onnx export")
    assert old_out.read_bytes() == b"previous export"           # a failed export never touches --out

    r = _cli("export", str(tmp_path / "ckpt.pt"), "--format", "tflite", "--out", str(old_out))
    assert r.returncode == 2 and "invalid choice: 'tflite'" in r.stderr
    (tmp_path / "adir.onnx").mkdir()
    _one_line_error(_cli("export", str(tmp_path / "ckpt.pt"), "--out", str(tmp_path / "adir.onnx")), "cannot write")


def test_export_api_raises_checkpoint_error(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        export_policy(tmp_path / "bad.pt", tmp_path / "a.onnx")
    assert not (tmp_path / "a.onnx").exists()


def _foreign_onnx(path):
    """A valid ONNX model that symphony_ros did not write (no metadata)."""
    torch.onnx.export(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), str(path), dynamo=False)


def test_load_policy_bad_files_are_one_line_errors(exported, tmp_path):
    files = exported["files"]
    cases = {}
    (tmp_path / "notes.txt").write_text("not a policy")
    cases["notes.txt"] = "not a policy file"
    (tmp_path / "empty.onnx").write_bytes(b"")
    cases["empty.onnx"] = "is empty"
    data = files["onnx"].read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    cases["cut.onnx"] = "cannot be loaded"
    data = files["torchscript"].read_bytes()
    (tmp_path / "cut.ts").write_bytes(data[: len(data) // 3])
    cases["cut.ts"] = "damaged archive"
    data = files["pt"].read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    cases["cut.pt"] = "damaged archive"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _foreign_onnx(tmp_path / "foreign.onnx")
    cases["foreign.onnx"] = "holds no symphony_ros metadata"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(tmp_path / "foreign.ts"))
    cases["foreign.ts"] = "holds no symphony_ros metadata"
    cases["missing.onnx"] = "does not exist"
    for name, needle in cases.items():
        with pytest.raises(PolicyFileError) as info:
            load_policy(tmp_path / name)
        msg = str(info.value)
        assert needle in msg and name in msg and "\n" not in msg, (name, msg)


def test_load_policy_rejects_newer_format_and_bad_input(exported, tmp_path):
    import onnx
    model = onnx.load(str(exported["files"]["onnx"]))
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            meta = json.loads(p.value)
            meta["format_version"] = FORMAT_VERSION + 1
            p.value = json.dumps(meta)
    onnx.save(model, str(tmp_path / "newer.onnx"))
    with pytest.raises(PolicyFileError, match="upgrade symphony_ros"):
        load_policy(tmp_path / "newer.onnx")
    with pytest.raises(PolicyFileError, match="runs on the CPU"):
        load_policy(exported["files"]["onnx"], device="cuda")
    policy = load_policy(exported["files"]["onnx"])
    with pytest.raises(ValueError, match=f"needs \\({exported['obs']},\\)"):
        policy.act(np.zeros(exported["obs"] + 1, np.float32), act_gain=1.0, noise_gain=0.0)


def _fresh_process_modules(path):
    code = ("import json, sys\n"
            "import numpy as np\n"
            "from symphony_ros.control.inference import load_policy\n"
            f"p = load_policy({str(path)!r})\n"
            "a = p.act(np.zeros(p.obs_dim, np.float32), act_gain=1.0, noise_gain=1.0)\n"
            "print(json.dumps(dict(action=a.tolist(), modules=sorted(sys.modules))))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["action"], set(out["modules"])


def test_onnx_and_torchscript_policies_load_without_training_code(tiny):
    exported = tiny
    action, mods = _fresh_process_modules(exported["files"]["onnx"])
    assert len(action) == exported["act"]
    assert not _training_code(mods), _training_code(mods)
    assert "torch" not in mods and "onnxruntime" in mods          # ONNX deploy needs no torch at all
    action, mods = _fresh_process_modules(exported["files"]["torchscript"])
    assert len(action) == exported["act"]
    assert not _training_code(mods), _training_code(mods)
    assert "symphony_ros.core.networks" not in mods               # the graph carries the network
    _, mods = _fresh_process_modules(exported["files"]["pt"])
    assert not _training_code(mods), _training_code(mods)         # even the torch actor file needs no learner


def test_exporting_leaves_the_callers_actor_alone(tiny):
    from symphony_ros.core.export import export_metadata, onnx_bytes, torchscript_bytes
    actor = Actor(6, 2, 8).train()
    actor.generator = torch.Generator().manual_seed(0)
    meta = export_metadata(actor, tiny["cfg"], 0, fmt="onnx")
    torchscript_bytes(actor, meta)
    onnx_bytes(actor, meta)
    assert actor.training and all(p.requires_grad for p in actor.parameters()) and actor.generator is not None


def test_actor_graph_is_the_actor_forward():
    actor = Actor(5, 2, 8).eval()
    graph = ActorGraph(actor)
    s, eps = torch.randn(3, 5), torch.rand(3, 2) * 2 - 1
    with torch.no_grad():
        for x, y in zip(graph(s, torch.tensor([0.8]), torch.tensor([0.5]), eps), actor(s, 0.8, 0.5, eps=eps)):
            assert torch.equal(x, y)


def test_zip_detection_tells_torchscript_from_checkpoint(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.writestr("archive/data.pkl", b"x")
    assert detect_format(tmp_path / "x.zip") == "checkpoint"
    with zipfile.ZipFile(tmp_path / "y.zip", "w") as z:
        z.writestr("archive/code/__torch__/m.py", b"x")
    assert detect_format(tmp_path / "y.zip") == "torchscript"


def test_bench_export_runs():
    """bench/bench_export.py keeps working (its figures are printed, never asserted)."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_export.py"), "--presets", "ed", "--calls", "50",
                        "--warmup", "5", "--rounds", "2"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith(("torch eager", "TorchScript", "onnxruntime"))]
    assert len(rows) == 6 and all(float(ln.split()[-1]) > 0 for ln in rows), r.stdout   # 3 backends × 2 modes


DEPLOY_SCRIPT = r'''
import json, sys, time
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray
from symphony_ros_interfaces.msg import EnvStep, Transition
from symphony_ros import contract as ct
from symphony_ros.nodes.actor import ActorNode
from symphony_ros.nodes.common import qos_profile as qos

policy_file, obs_dim = sys.argv[1], int(sys.argv[2])
rclpy.init()
actor = ActorNode(cli_args=["--ros-args", "-p", "deploy:=true", "-p", f"policy_file:={policy_file}",
                            "-p", "joint_lower:=[-0.5, -0.5]", "-p", "joint_upper:=[0.5, 0.5]"])
node = rclpy.create_node("deploy_robot")
cmds, trs = [], []
pub = node.create_publisher(EnvStep, ct.ENV_STEP.name, qos(ct.ENV_STEP))
node.create_subscription(Float64MultiArray, ct.JOINT_COMMANDS.name, lambda m: cmds.append(list(m.data)),
                         qos(ct.JOINT_COMMANDS))
node.create_subscription(Transition, ct.TRANSITIONS.name, trs.append, qos(ct.TRANSITIONS))
ex = SingleThreadedExecutor()
ex.add_node(actor)
ex.add_node(node)
def spin_until(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not pred():
        ex.spin_once(timeout_sec=0.01)
    return pred()
assert spin_until(lambda: pub.get_subscription_count() > 0 and actor._cmd_pub.get_subscription_count() > 0)
obs = np.linspace(-2, 2, obs_dim).tolist()
for k in range(6):
    n = len(cmds)
    pub.publish(EnvStep(episode=0, step=k, observation=obs))
    assert spin_until(lambda: len(cmds) > n), f"no command for step {k}"
print(json.dumps(dict(commands=cmds, transitions=len(trs), acted=actor.steps_acted, modules=sorted(sys.modules))))
'''
# what a robot running an export must not need: the learner, the agent and its buffer, losses, optimizer, training
DEPLOY_FORBIDDEN = ("symphony_ros.core.agent", "symphony_ros.core.replay_buffer", "symphony_ros.core.optimizer",
                    "symphony_ros.core.losses", "symphony_ros.learner", "symphony_ros.training",
                    "symphony_ros.core.networks")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_actor_node_deploys_an_export_without_training_code(tiny, fmt):
    """The ActorNode with ``deploy: true`` runs an exported file over real DDS in a fresh process: noise-free
    (the same observation gives the same command, the export's mean action clamped to the limits), no transitions,
    and none of the learner or training code imported (ONNX: no torch either)."""
    pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    pytest.importorskip("symphony_ros_interfaces.msg", reason="symphony_ros_interfaces not built")
    path = tiny["files"][fmt]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", DEPLOY_SCRIPT, str(path), str(tiny["obs"])], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    cmds = np.asarray(out["commands"])
    assert cmds.shape == (6, tiny["act"]) and out["acted"] == 6 and out["transitions"] == 0
    np.testing.assert_array_equal(cmds, np.repeat(cmds[:1], 6, axis=0))          # deterministic
    x = np.linspace(-2, 2, tiny["obs"]).astype(np.float32)
    expected = np.clip(load_policy(path).act(x, act_gain=1.0, noise_gain=0.0), -0.5, 0.5)
    np.testing.assert_allclose(cmds[0], expected, rtol=0, atol=1e-6)
    mods = set(out["modules"])
    assert not [m for m in mods if m.startswith(DEPLOY_FORBIDDEN)], sorted(m for m in mods
                                                                            if m.startswith(DEPLOY_FORBIDDEN))
    if fmt == "onnx":
        assert "torch" not in mods and "onnxruntime" in mods
