"""The learner on CUDA: same maths as on the CPU. Skipped, with that reason, on machines without a CUDA device
(CI has none; run it where a GPU is: `python -m pytest test/test_cuda.py`)."""
import copy

import pytest
import torch

from conftest import filled_agent, tiny_overrides
from symphony_ros.core.agent import SymphonyAgent
from symphony_ros.core.config import load_preset
from symphony_ros.core.networks import CriticEnsemble, FeedForward

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_fused_critics_match_separate_blocks_on_cuda():
    torch.manual_seed(0)
    blocks = [FeedForward(20, 64, 16) for _ in range(3)]
    fused = CriticEnsemble(20, 64, 16, 3)
    fused.load_blocks(blocks)
    fused, blocks = fused.cuda(), [b.cuda() for b in blocks]
    s, a = torch.randn(50, 15, device="cuda"), torch.randn(50, 5, device="cuda")
    ref = torch.cat([b(torch.cat([s, a], -1)) for b in blocks], -1)
    torch.backends.cuda.matmul.allow_tf32 = False
    assert (fused(s, a) - ref).abs().max().item() <= 1e-4


def test_agent_update_on_cuda_matches_cpu():
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = load_preset("s3", tiny_overrides())
    cpu, _ = filled_agent(cfg, seed=3)
    gpu = SymphonyAgent(6, 2, cfg.replace(cuda_graph=False), device="cuda", seed=3)
    gpu.load_state_dict(copy.deepcopy(cpu.state_dict()))
    # same batch and noise on both: draw on the CPU and feed the same tensors
    batch = cpu.buffer.sample(cfg.batch_size, torch.Generator().manual_seed(1))
    gpu.buffer.sample = lambda B, g=None: tuple(t.cuda() for t in batch)
    cpu.buffer.sample = lambda B, g=None: batch
    noise = torch.randn(cfg.batch_size, 2)
    import symphony_ros.core.networks as nets
    orig = nets.bounded_noise
    nets.bounded_noise = lambda shape, clip, device="cpu", dtype=torch.float32, generator=None: \
        noise.clamp(-clip, clip).div(clip).to(device)
    try:
        sc, sg = cpu.update(), gpu.update()
    finally:
        nets.bounded_noise = orig
    for k, v in sc.as_floats().items():
        assert sg.as_floats()[k] == pytest.approx(v, rel=1e-3, abs=1e-5), k
    pc = torch.cat([p.detach().flatten() for p in cpu.actor.parameters()])
    pg = torch.cat([p.detach().flatten().cpu() for p in gpu.actor.parameters()])
    assert (pc - pg).abs().max().item() < 1e-5


def test_cuda_graph_replay_equals_the_eager_update():
    """cuda_graph=True captures _update_body once; each replay must equal running the body eagerly with the same
    (default-generator) random stream."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = load_preset("s3", tiny_overrides(cuda_graph=True))
    graph, _ = filled_agent(cfg, seed=5, device="cuda")
    eager = SymphonyAgent(6, 2, cfg.replace(cuda_graph=False), device="cuda", seed=5)
    eager.load_state_dict(copy.deepcopy(graph.state_dict()))
    own = hasattr(torch.cuda.CUDAGraph, "register_generator_state")   # graph replays the agent's own generator
    if not own:
        for m in [eager.actor] + [x for x in eager.critic.modules()]:
            if hasattr(m, "generator"):
                m.generator = None
    torch.cuda.manual_seed(123)
    for _ in range(4):
        stats_g = graph.update().as_floats()
    torch.cuda.manual_seed(123)
    for _ in range(4):
        stats_e = eager._update_body(eager.generator if own else None).as_floats()
    for k, v in stats_e.items():
        assert stats_g[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    pg = torch.cat([p.detach().flatten() for p in graph.actor.parameters()])
    pe = torch.cat([p.detach().flatten() for p in eager.actor.parameters()])
    assert (pg - pe).abs().max().item() < 1e-5
    assert graph.updates == 4
