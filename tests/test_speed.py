"""Speed settings change speed, not results: fused AdamW, channels_last, matmul precision, cuDNN benchmark,
DDP options (tested in test_ae_ddp.py), torch.compile (slow)."""
import pytest
import torch
from omegaconf import OmegaConf
from pytorch_lightning.plugins.precision import MixedPrecision
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import GradClipAlgorithmType
from torch import nn

from ae_helpers import TINY_CONFIG as TINY_AE, load_checkpoint, only_run_dir, train_ae_main

from eyeoct.config import ConfigError, instantiate_from_config, load_config
from eyeoct.speed import BF16Autocast, SpeedSettings, apply_to_model, apply_to_process
from eyeoct.training import build_trainer
from ldm.optim import build_adamw, warmup_decay

TINY_DM = "configs/dm/tiny_test.yaml"


def tiny_dm(repo_root, *overrides):
    torch.manual_seed(0)
    return instantiate_from_config(load_config([repo_root / TINY_DM], overrides).model)


def batch():
    g = torch.Generator().manual_seed(1)
    return {"oct": torch.rand(2, 6, 32, 32, generator=g) * 2 - 1, "cf": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1}


def loss_of(model):
    return model.diffusion_loss(batch(), torch.Generator().manual_seed(0), sample_posterior=True)[0]


def test_settings_default_off_and_bad_keys_are_named():
    assert SpeedSettings.from_config(OmegaConf.create({})) == SpeedSettings()
    parsed = SpeedSettings.from_config(OmegaConf.create({"speed": {"compile": {"mode": "max-autotune"},
                                                                   "ddp": {"static_graph": True}}}))
    assert parsed.compile and parsed.compile_mode == "max-autotune" and parsed.ddp == (("static_graph", True),)
    for bad, message in [({"compil": True}, r"unknown keys \['compil'\]"),
                         ({"compile": {"mode": "fast"}}, "speed.compile.mode must be one of"),
                         ({"matmul_precision": "tf32"}, "speed.matmul_precision must be one of"),
                         ({"ddp": {"bucket_cap": 25}}, r"speed.ddp has unknown keys \['bucket_cap'\]"),
                         ({"channels_last": "yes"}, "speed.channels_last must be true or false")]:
        with pytest.raises(ConfigError, match=message):
            SpeedSettings.from_config(OmegaConf.create({"speed": bad}))


@pytest.mark.parametrize("model", ["linear", "conv"])
def test_fused_adamw_takes_the_steps_of_the_plain_one(model):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 4)) if model == "linear" else nn.Conv2d(3, 5, 3)
    twin = [p.detach().clone().requires_grad_() for p in net.parameters()]
    fused = build_adamw(net.parameters(), 1e-2, (0.9, 0.99), 0.05, {"fused": "auto"})
    plain = torch.optim.AdamW(twin, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05, foreach=False)
    assert fused.defaults["fused"] is True  # the CPU has the fused kernel
    for _ in range(5):
        for p, q in zip(net.parameters(), twin):
            grad = torch.randn_like(p)
            p.grad, q.grad = grad.clone(), grad.clone()
        fused.step()
        plain.step()
    for p, q in zip(net.parameters(), twin):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_optimizer_choice_is_checked_and_used_by_both_stages(repo_root):
    params = [nn.Parameter(torch.zeros(2))]
    assert build_adamw(params, 1e-3, (0.9, 0.999), 0.0, {"fused": False}).defaults["foreach"] is True
    with pytest.raises(ValueError, match="fused must be auto, true or false"):
        build_adamw(params, 1e-3, (0.9, 0.999), 0.0, {"fused": "yes"})
    with pytest.raises(ValueError, match="no fused AdamW for parameters on \\['meta'\\]"):
        build_adamw([nn.Parameter(torch.zeros(2, device="meta"))], 1e-3, (0.9, 0.999), 0.0, {"fused": True})
    assert tiny_dm(repo_root).configure_optimizers()["optimizer"].defaults["fused"] is True
    ae = instantiate_from_config(load_config([repo_root / "configs/ae/tiny_test.yaml"]).model)
    assert all(opt.defaults["fused"] for opt in ae.configure_optimizers()[0])


def test_stage2_has_cosine_decay_as_an_option(repo_root):
    factor = warmup_decay(10, 110, "cosine", 0.1)
    assert [factor(s) for s in (0, 9)] == [0.1, 1.0]
    assert factor(60) == pytest.approx(0.55) and factor(110) == pytest.approx(0.1)
    model = tiny_dm(repo_root, "model.params.lr_decay=cosine", "model.params.min_lr_ratio=0.2")
    scheduler = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert scheduler.lr_lambdas[0](4) == 1.0  # no trainer: total unknown, constant after warm-up
    with pytest.raises(ValueError, match="lr_decay must be one of"):
        tiny_dm(repo_root, "model.params.lr_decay=linear")


def test_channels_last_gives_the_same_loss(repo_root):
    reference = loss_of(tiny_dm(repo_root))
    model = tiny_dm(repo_root)
    apply_to_model(model, SpeedSettings(channels_last=True))
    conv = model.unet.encoder.input_blocks[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    torch.testing.assert_close(loss_of(model), reference, rtol=0, atol=1e-5)


def test_matmul_precision_and_cudnn_benchmark_reach_torch(tmp_path):
    before = torch.get_float32_matmul_precision()
    try:
        apply_to_process(SpeedSettings(matmul_precision="high"))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)
    cfg = OmegaConf.create({"speed": {"cudnn_benchmark": True}, "trainer": {"accelerator": "cpu", "devices": 1}})
    build_trainer(cfg, tmp_path)
    assert torch.backends.cudnn.benchmark is True
    build_trainer(OmegaConf.create({"trainer": {"accelerator": "cpu", "devices": 1}}), tmp_path)
    assert torch.backends.cudnn.benchmark is False
    with pytest.raises(ConfigError, match="speed.cudnn_benchmark, not trainer.benchmark"):
        build_trainer(OmegaConf.create({"trainer": {"benchmark": True}}), tmp_path)


def test_bf16_mixed_clips_gradients_before_a_fused_step(tmp_path):
    trainer = build_trainer(OmegaConf.create({"trainer": {"accelerator": "cpu", "devices": 1,
                                                          "precision": "bf16-mixed"}}), tmp_path)
    assert isinstance(trainer.precision_plugin, BF16Autocast) and trainer.precision == "bf16-mixed"
    assert trainer.precision_plugin.device == "cpu"
    alias = build_trainer(OmegaConf.create({"trainer": {"accelerator": "cpu", "devices": 1, "precision": "bf16"}}),
                          tmp_path)
    assert isinstance(alias.precision_plugin, BF16Autocast)
    net = nn.Linear(4, 3)
    optimizer = build_adamw(net.parameters(), 1e-3, (0.9, 0.999), 0.0)
    assert optimizer.defaults["fused"] is True
    for p in net.parameters():
        p.grad = torch.full_like(p, 2.0)  # 15 entries: norm 2 * sqrt(15)
    with pytest.raises(RuntimeError, match="does not allow for gradient clipping"):
        MixedPrecision("bf16-mixed", "cpu").clip_gradients(optimizer, 1.0, GradClipAlgorithmType.NORM)
    trainer.precision_plugin.clip_gradients(optimizer, 1.0, GradClipAlgorithmType.NORM)
    for p in net.parameters():
        torch.testing.assert_close(p.grad, torch.full_like(p, 1 / 15 ** 0.5), rtol=1e-5, atol=0)


def test_stage1_trains_in_bf16_with_clipping_and_the_fused_optimizer(tmp_path):
    """configs/ae/aptos_kl_f8.yaml's combination (bf16-mixed, gradient_clip_val 1.0, fused AdamW), which
    Lightning's own bf16 plugin stops at the first step."""
    train_ae_main()(["--config", str(TINY_AE), f"run.root={tmp_path}", "trainer.max_steps=3",
                     "trainer.precision=bf16-mixed", "trainer.val_check_interval=3"])
    checkpoint = load_checkpoint(only_run_dir(tmp_path) / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())


def test_ddp_options_build_a_ddp_strategy(tmp_path):
    cfg = OmegaConf.create({"speed": {"ddp": {"static_graph": True, "gradient_as_bucket_view": True}},
                            "trainer": {"accelerator": "cpu", "devices": 1, "strategy": "ddp"}})
    strategy = build_trainer(cfg, tmp_path).strategy
    assert isinstance(strategy, DDPStrategy)
    assert strategy._ddp_kwargs == {"static_graph": True, "gradient_as_bucket_view": True}
    cfg.trainer.strategy = "auto"
    with pytest.raises(ConfigError, match="needs trainer.strategy: ddp"):
        build_trainer(cfg, tmp_path)


@pytest.mark.slow
def test_compiled_networks_give_the_same_loss_and_keys(repo_root):
    reference = tiny_dm(repo_root)
    model = tiny_dm(repo_root)
    apply_to_model(model, SpeedSettings(compile=True))
    assert model.state_dict().keys() == reference.state_dict().keys()
    torch.testing.assert_close(loss_of(model), loss_of(reference), rtol=0, atol=1e-5)
    with pytest.raises(ConfigError, match="can compile"):
        apply_to_model(tiny_dm(repo_root), SpeedSettings(compile=True, compile_modules=("vae",)))
