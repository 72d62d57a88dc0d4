"""Presets and the validated config: every preset loads, bad keys/values/YAML give one clear line."""
import math

import pytest

from symphony_ros.core.config import (FIELDS, PRESETS, ConfigError, config_dir, load_preset, load_yaml,
                                      parse_overrides)


def test_every_preset_file_sets_every_field():
    import yaml
    for name in PRESETS:
        data = yaml.safe_load((config_dir() / "presets" / f"{name}.yaml").read_text())
        assert set(data) == set(FIELDS), name


@pytest.mark.parametrize("name,checks", [
    ("s3", dict(noise_clip=math.e, updates_per_step=3, lr=1e-4, n_exp=10240, buffer_times=50, hidden_dim=512,
                heads_per_critic=128, batch_size=384, grad_dropout_keep=None, terminal_survival_cycles=-1,
                buffer_dtype="float32", target_weight_family="tanh")),
    ("se", dict(noise_clip=math.pi, updates_per_step=3, lr=1e-4)),
    ("s2", dict(grad_dropout_keep=0.5, target_grad_dropout=True, lr=5e-5, n_exp=20480, buffer_times=25)),
    ("ed", dict(hidden_dim=384, heads_per_critic=96, batch_size=288, updates_per_step=2, n_exp=7680,
                buffer_times=50, buffer_dtype="float16")),
    ("s2_tilde", dict(target_weight_family="bell", target_weight_power=2 * math.pi, buffer_weight_family="bell",
                      terminal_survival_cycles=4, prev_action_in_obs=True, lr=5e-5, target_grad_dropout=True)),
])
def test_preset_values(name, checks):
    cfg = load_preset(name)
    for k, v in checks.items():
        got = getattr(cfg, k)
        assert got == (pytest.approx(v) if isinstance(v, float) else v), (name, k)
    assert cfg.gamma == 0.99 and cfg.tau == 0.005 and cfg.weight_decay == 0.01
    assert cfg.ema_alpha == pytest.approx(0.618034, abs=1e-6) and cfg.adam_beta2 == 0.995


def test_overrides_are_validated_and_named():
    cfg = load_preset("ed", parse_overrides(["lr=5e-5", "buffer_dtype=float32"]))
    assert cfg.lr == 5e-5 and cfg.buffer_dtype == "float32" and cfg.preset == "ed"
    with pytest.raises(ConfigError, match=r"unknown config key 'learning_rate'"):
        parse_overrides(["learning_rate=1"])
    with pytest.raises(ConfigError, match=r"'gamma'.*\[0.0, 1.0\)"):
        load_preset("s3", {"gamma": 1.5})
    with pytest.raises(ConfigError, match=r"'buffer_dtype'.*float32, float16"):
        load_preset("s3", {"buffer_dtype": "int8"})
    with pytest.raises(ConfigError, match=r"'updates_per_step'.*integer"):
        load_preset("s3", {"updates_per_step": 2.5})
    with pytest.raises(ConfigError, match=r"'lr'"):
        load_preset("s3", {"lr": "fast"})
    with pytest.raises(ConfigError, match="unknown preset 'S9'"):
        load_preset("S9")


def test_bad_yaml_and_unknown_keys_in_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    unk = tmp_path / "unk.yaml"
    unk.write_text("preset: s3\nlrr: 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'lrr'"):
        load_yaml(unk)
    custom = tmp_path / "mine.yaml"
    custom.write_text("preset: custom\nhidden_dim: 64\n")
    assert load_preset(str(custom)).hidden_dim == 64
