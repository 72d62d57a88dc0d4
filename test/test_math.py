"""Each formula of docs/algorithm.md against values derived by hand and the numbers of its appendix."""
import math

import pytest
import torch

from symphony_ros.core.activations import ReSine, resine
from symphony_ros.core.losses import omega, rehae, rehse, swaddling, temporal_advantage
from symphony_ros.core.networks import Actor, CriticEnsemble, FeedForward, gradient_dropout, sorted_weighted_target
from symphony_ros.core.noise import bounded_noise
from symphony_ros.core.optimizer import SymphonyAdam
from symphony_ros.core.rank_weights import (critic_target_weights, effective_sample_size, rank_weight,
                                            replay_sampling_weights)

PHI = (1 + 5 ** 0.5) / 2


def test_resine_matches_hand_formula():
    x = torch.tensor([0.0, 0.3, -1.2, 2.5])
    s = torch.tensor(0.4)
    sig = 1 / (1 + math.exp(-0.4))
    expect = [sig * math.sin(v / sig) / (1 + math.exp(-1.5 * math.sin(v / sig))) for v in x.tolist()]
    assert torch.allclose(resine(x, s), torch.tensor(expect), atol=1e-6)
    m = ReSine(256)
    assert m.s.abs().max() <= 1 / 16 and m.s.shape == (256,)


def test_rehse_rehae_values():
    t1 = math.tanh(1.0)
    assert rehse(torch.tensor(2.0)).item() == pytest.approx(2 * t1)
    assert rehse(torch.tensor(-2.0)).item() == pytest.approx(2 * t1)          # even
    assert rehae(torch.tensor(-2.0)).item() == pytest.approx(-2 * t1)         # odd
    assert rehse(torch.tensor(1e-3)).item() == pytest.approx(0.5e-6, rel=1e-3)  # ≈ x²/2 near 0
    assert rehse(torch.tensor(50.0)).item() == pytest.approx(50.0, rel=1e-6)   # ≈ |x| far out


def test_omega_is_two_atanh():
    x = torch.tensor([0.1, 0.5, -0.7], dtype=torch.float64)
    assert torch.allclose(omega(x), torch.log((1 + x) / (1 - x)))


def _sigma_minimiser(beta: float) -> float:
    sig = torch.linspace(0.01, 0.99, 98_001, dtype=torch.float64)
    vals = swaddling(sig, torch.full_like(sig, beta))
    return float(sig[vals.argmin()])


@pytest.mark.parametrize("beta,expected", [(0.05, 0.3679), (0.09, 0.3645), (0.2, 0.2756), (0.5, 0.13)])
def test_swaddling_sigma_minimiser_appendix_a(beta, expected):
    assert _sigma_minimiser(beta) == pytest.approx(expected, abs=6e-4 if beta < 0.5 else 5e-3)


def test_swaddling_beta_gradient_uses_stop_grad_in_barrier():
    sigma = torch.tensor(0.3, dtype=torch.float64)
    beta = torch.tensor(0.09, dtype=torch.float64, requires_grad=True)
    swaddling(sigma, beta).backward()
    # d/dβ of β·σ ln σ + Ω(β²) only (the barrier's exponent 1/β* is detached)
    expected = 0.3 * math.log(0.3) + 2 * (2 * 0.09) / (1 - 0.09 ** 4)
    assert beta.grad.item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("clip,std", [(math.e, 0.366), (math.pi, 0.318)])
def test_bounded_noise_std_and_bounds(clip, std):
    g = torch.Generator().manual_seed(0)
    eps = bounded_noise((2_000_000,), clip, generator=g)
    assert eps.abs().max() <= 1.0
    assert eps.std().item() == pytest.approx(std, abs=1.5e-3)


def test_critic_target_weights_ess_appendix_a():
    assert effective_sample_size(critic_target_weights(384, "tanh", math.e)) == pytest.approx(307.6, abs=0.1)
    assert effective_sample_size(critic_target_weights(384, "bell", 2 * math.pi)) == pytest.approx(319.5, abs=0.1)
    assert effective_sample_size(critic_target_weights(384, "bell", 2 * math.e)) == pytest.approx(321.2, abs=0.1)
    p = critic_target_weights(384, "tanh", math.e)
    assert p[-96:].sum().item() == pytest.approx(0.046, abs=0.002)   # top 25% of values get 4.6% of the weight
    assert p[-1].item() / p.max().item() == pytest.approx(2e-6, rel=0.5)


def test_bell_weights_flat_top_values():
    u = torch.tensor([1.0, 1 / 384], dtype=torch.float64)  # critic rank i = 0 → u = 1; last rank i = 383 → u = 1/384
    w = rank_weight(u, "bell", 2 * math.pi)
    assert w[0].item() == pytest.approx(0.9994, abs=1e-4) and w[1].item() == pytest.approx(0.0049, abs=1e-4)


def test_replay_weights_appendix_a_exact():
    N = 512_000
    for fam, power, newest, old10, age in [("tanh", math.e, 1.340, 0.0015, 193.7e3),
                                           ("bell", 2 * math.pi, 1.305, 0.0044, 199.8e3)]:
        p = replay_sampling_weights(N, fam, power)
        assert (p[-1] * N).item() == pytest.approx(newest, abs=1e-3)
        assert p[: N // 10].sum().item() == pytest.approx(old10, abs=1e-4)
        assert ((N - 1 - torch.arange(N, dtype=torch.float64)) * p).sum().item() == pytest.approx(age, rel=1e-3)


def test_sorted_weighted_target_hand_value():
    q = torch.tensor([[3.0, 1.0, 2.0]])
    w = torch.tensor([0.5, 0.3, 0.2])
    assert sorted_weighted_target(q, w).item() == pytest.approx(0.5 * 1 + 0.3 * 2 + 0.2 * 3)


def test_temporal_advantage_first_value_and_carry():
    q = torch.tensor([[2.0], [-4.0]])
    ta, m = temporal_advantage(q, 0.0, 1 / PHI, 1e-6)
    assert torch.allclose(ta, torch.tensor([[PHI], [-PHI]]), atol=1e-5)       # m starts at 0 → TA = ±1.618
    ta2, m2 = temporal_advantage(q, m.mean(), 1 / PHI, 1e-6)
    expect_m = (1 / PHI) * m.mean() + (1 - 1 / PHI) * q
    assert torch.allclose(m2, expect_m) and torch.allclose(ta2, (q - expect_m) / expect_m.abs())
    ta3, _ = temporal_advantage(torch.zeros(1, 1), 0.0, 1 / PHI, 1e-6)          # |m| = 0 is guarded
    assert torch.isfinite(ta3).all()


def test_fused_critics_equal_three_separate_blocks():
    torch.manual_seed(0)
    S, d, h, k, B = 11, 4, 32, 8, 17
    blocks = [FeedForward(S + d, h, k) for _ in range(3)]
    fused = CriticEnsemble(S + d, h, k, 3)
    fused.load_blocks(blocks)
    s, a = torch.randn(B, S), torch.randn(B, d)
    ref = torch.cat([b(torch.cat([s, a], -1)) for b in blocks], -1)
    out = fused(s, a)
    assert out.shape == (B, 3 * k)
    assert (out - ref).abs().max().item() <= 1e-5
    # gradients agree too
    out.square().sum().backward()
    ref.square().sum().backward()
    assert (fused.w2.grad[1] - blocks[1].net[2].weight.grad.T).abs().max().item() <= 1e-5
    assert (fused.s.grad[2, 0] - blocks[2].net[3].s.grad).abs().max().item() <= 1e-5


def test_gradient_dropout_keeps_forward_and_drops_half_the_gradient():
    x = torch.randn(200, 100, requires_grad=True)
    g = torch.Generator().manual_seed(1)
    y = gradient_dropout(x, 0.5, g)
    assert torch.equal(y, x)
    y.sum().backward()
    assert x.grad.mean().item() == pytest.approx(0.5, abs=0.02)
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_actor_head_formula_and_bounds():
    torch.manual_seed(0)
    actor = Actor(5, 3, 16)
    s = torch.randn(64, 5)
    raw = actor.net(s)
    A, S_, B_ = raw.chunk(3, -1)
    a0, sig, beta = actor(s, act=1.0, noise=0.0)
    assert torch.allclose(a0, torch.tanh(torch.tanh(S_ / 2).abs() * torch.tanh(A / 2)), atol=1e-6)
    assert sig.min() >= 1e-3 and sig.max() <= 1 - 1e-3 and beta.min() >= 1e-3
    assert a0.abs().max() <= math.tanh(1.0)                # |a| ≤ tanh(σ) < tanh(1) deterministic
    a1, _, _ = actor(s, act=1.0, noise=1.0)
    assert a1.abs().max() < math.tanh(2.0)                  # noisy: |a| < tanh(2)
    az, _, _ = actor(s, act=0.0, noise=1.0)                 # zero-policy window: pure tanh(ε)
    assert az.abs().max() <= math.tanh(1.0) + 1e-6


def test_symphony_adam_equation_and_first_step_ratio():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = SymphonyAdam([p], lr=0.1, betas=(1 / PHI, 0.995), eps=1e-8, weight_decay=0.01)
    g = torch.tensor([0.5, 0.25])
    m = torch.zeros(2)
    v = torch.zeros(2)
    theta = p.detach().clone()
    for _ in range(3):
        p.grad = g.clone()
        opt.step()
        m = (1 / PHI) * m + (1 - 1 / PHI) * g
        v = 0.995 * v + 0.005 * g * g
        theta = theta - 0.1 * (m / (v.sqrt() + 1e-8) + 0.01 * theta)
        assert torch.allclose(p.detach(), theta, atol=1e-6)
    # first step ≈ 5.4× a bias-corrected Adam step (constant gradient, no decay)
    q1 = torch.nn.Parameter(torch.zeros(1))
    q2 = torch.nn.Parameter(torch.zeros(1))
    o1 = SymphonyAdam([q1], lr=1e-3, weight_decay=0.0)
    o2 = torch.optim.Adam([q2], lr=1e-3, betas=(1 / PHI, 0.995))
    q1.grad = torch.ones(1)
    q2.grad = torch.ones(1)
    o1.step()
    o2.step()
    assert (q1 / q2).item() == pytest.approx(5.40, abs=0.01)


def test_weight_decay_applies_to_every_parameter():
    ff = FeedForward(3, 8, 2)
    opt = SymphonyAdam(ff.parameters(), lr=0.1, weight_decay=0.5)
    before = {n: p.detach().clone() for n, p in ff.named_parameters()}
    for p in ff.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in ff.named_parameters():   # zero gradient → only decay: θ ← θ·(1 − lr·λ)
        assert torch.allclose(p.detach(), before[n] * (1 - 0.05)), n


# ------------------------------------------------------------------------------ fidelity fixes and opt-in flags
def test_target_critic_dropout_masks_the_actor_gradient_exactly_like_a_hand_built_mask():
    """S2/S2~: the target copy keeps its gradient dropout; forward unchanged, the gradient that reaches a' (and so
    the actor) is the hand-built mask times the undropped one."""
    from conftest import tiny_overrides
    from symphony_ros.core.agent import SymphonyAgent
    from symphony_ros.core.config import load_preset
    for flag in (True, False):
        cfg = load_preset("s2", tiny_overrides(target_grad_dropout=flag))
        agent = SymphonyAgent(6, 2, cfg, device="cpu", seed=0)
        assert (agent.critic_target.dropout is not None) == flag
        s = torch.randn(10, 6)
        a = torch.randn(10, 2, requires_grad=True)
        c = torch.randn(10, agent.critic_target.n_q)
        state = agent.generator.get_state()
        q = agent.critic_target(s, a)
        (q * c).sum().backward()
        grad = a.grad.clone()
        # by hand: the same target without dropout, its output masked with the same random numbers
        a.grad = None
        plain = agent.critic_target.dropout
        agent.critic_target.dropout = None
        q0 = agent.critic_target(s, a)
        agent.critic_target.dropout = plain
        assert torch.equal(q.detach(), q0.detach())                       # no forward effect
        g = torch.Generator().set_state(state)
        k = agent.critic_target.heads
        mask = (torch.rand((agent.critic_target.n_critics, 10, k), generator=g) < cfg.grad_dropout_keep)
        mask = mask.transpose(0, 1).reshape(10, -1).float() if flag else torch.ones_like(q0)
        (q0 * c * mask).sum().backward()
        assert torch.allclose(grad, a.grad, atol=1e-6), flag


def test_annealed_adam_epsilon_formula():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = SymphonyAdam([p], lr=0.1, betas=(1 / PHI, 0.995), eps=1e-8, weight_decay=0.0, anneal_eps=True)
    g = torch.tensor([0.01, 0.02])
    m, v, theta, eps = torch.zeros(2), torch.zeros(2), p.detach().clone(), 1 - 1e-8
    for t in range(1, 6):
        p.grad = g.clone()
        opt.step()
        eps = 0.995 * eps + 0.005 * 1e-8                                  # ε_t, advanced before its use
        m = (1 / PHI) * m + (1 - 1 / PHI) * g
        v = 0.995 * v + 0.005 * g * g
        theta = theta - 0.1 * m / (v.sqrt() + eps)
        assert torch.allclose(p.detach(), theta, atol=1e-7), t
    assert float(opt.param_groups[0]["eps_t"]) == pytest.approx(eps, rel=1e-6)
    assert eps == pytest.approx(1e-8 + (1 - 2e-8) * 0.995 ** 5)
    # no burst: the first step is ~lr·(1−β1)·g/1 instead of 5.4·lr
    q = torch.nn.Parameter(torch.zeros(1))
    o = SymphonyAdam([q], lr=1e-3, weight_decay=0.0, anneal_eps=True)
    q.grad = torch.full((1,), 0.01)
    o.step()
    assert abs(q.item()) < 1e-5


def test_gated_adam_step_equals_the_plain_step_and_a_zero_gate_changes_nothing():
    for anneal in (False, True):
        p1 = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        p2 = torch.nn.Parameter(p1.detach().clone())
        o1 = SymphonyAdam([p1], lr=0.1, anneal_eps=anneal)
        o2 = SymphonyAdam([p2], lr=0.1, anneal_eps=anneal)
        for k in range(4):
            g = torch.tensor([0.3, -0.1, 0.7]) * (k + 1)
            p1.grad, p2.grad = g.clone(), g.clone()
            o1.step()
            o2.step(gate=torch.tensor(1.0))
            assert torch.allclose(p1, p2, atol=1e-7)
        before = (p2.detach().clone(), [t.clone() for t in o2.state[p2].values()])
        p2.grad = torch.tensor([float("nan"), float("inf"), 1.0])
        o2.step(gate=torch.tensor(0.0))
        assert torch.equal(p2.detach(), before[0])
        assert all(torch.equal(a, b) for a, b in zip(o2.state[p2].values(), before[1]))


def test_temporal_advantage_with_a_scalar_denominator():
    q = torch.tensor([[1.0], [3.0], [-2.0]], requires_grad=True)
    ta, m_t = temporal_advantage(q, torch.tensor(0.5), 1 / PHI, 1e-6, scalar_denominator=True)
    m = (1 / PHI) * 0.5 + (1 - 1 / PHI) * q.detach()
    assert torch.allclose(m_t, m)
    assert torch.allclose(ta, (q.detach() - m) / m.mean().abs())
    ta.sum().backward()
    assert torch.allclose(q.grad, torch.full_like(q, 1 / m.mean().abs().item()))   # scalar denominator


def test_swaddling_in_the_td_target():
    from symphony_ros.core.losses import swaddling_sigma_terms
    sigma, beta = torch.tensor([[0.364, 0.2]]), torch.tensor([[0.092, 0.05]])
    w = omega(sigma ** (1 / beta)) + beta * sigma * torch.log(sigma)
    assert torch.allclose(swaddling_sigma_terms(sigma, beta), w)
    assert torch.allclose(swaddling(sigma, beta), w + omega(beta ** 2))
    assert float(swaddling_sigma_terms(torch.tensor(0.364), torch.tensor(0.092))) == pytest.approx(-0.0337, abs=5e-4)
    from conftest import filled_agent, tiny_overrides
    from symphony_ros.core.config import load_preset
    for flag in (False, True):   # the flag changes the critic's target, so the critic loss of one update differs
        agent, _ = filled_agent(load_preset("s3", tiny_overrides(swaddling_in_target=flag)))
        stats = agent.update()
        assert torch.isfinite(stats.critic_loss)
