"""ControlLDM: condition dropout, EMA coverage, locks, ControlNet no-op at init, sampling, checkpoint round trip."""
import pytest
import torch
from omegaconf import OmegaConf

from cldm.cldm import ControlLDM
from cldm.conditioning import drop_conditions
from cldm.timestep_losses import bucket_names, bucket_sums
from eyeoct.config import instantiate_from_config, load_config

TINY_CONFIG = "configs/dm/tiny_test.yaml"




def build_model(repo_root, *overrides):
    cfg = load_config([repo_root / TINY_CONFIG], overrides)
    torch.manual_seed(0)
    return instantiate_from_config(cfg.model), cfg


def tiny_batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"oct": torch.rand(n, 6, 32, 32, generator=g) * 2 - 1, "cf": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1}


def test_condition_dropout_rate_matches_p_uncond_within_binomial_tolerance():
    n, p = 20000, 0.15
    cond = {"context": torch.ones(n, 3, 2), "hint": torch.ones(n, 4, 2, 2)}
    null = {"context": torch.zeros(n, 3, 2), "hint": torch.zeros(n, 4, 2, 2)}
    mixed, dropped = drop_conditions(cond, null, p, torch.Generator().manual_seed(0))
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 4 * sigma
    # dropped items carry the null condition in every key, kept items the original one
    assert torch.equal(mixed["context"][:, 0, 0], (~dropped).float())
    assert torch.equal(mixed["hint"][:, 0, 0, 0], (~dropped).float())


def test_loss_is_logged_per_timestep_bucket():
    assert bucket_names(1000, 4) == ["loss_t0-249", "loss_t250-499", "loss_t500-749", "loss_t750-999"]
    sums, counts = bucket_sums(torch.tensor([1.0, 3.0, 10.0, 4.0]), torch.tensor([0, 249, 999, 250]),
                               torch.tensor([250, 500, 750]))
    assert sums.tolist() == [4.0, 4.0, 0.0, 10.0] and counts.tolist() == [2.0, 1.0, 0.0, 1.0]


def test_ema_covers_every_trainable_module(repo_root):
    model, _ = build_model(repo_root)
    parts = {"unet": model.unet, "controlnet": model.controlnet, "cf_tower": model.cf_encoder.tower,
             "cf_proj": model.cf_encoder.proj, "cf_pooled": model.cf_encoder.pooled_proj,
             "label_emb": model.unet.encoder.label_emb, "null": model.null_context}
    before = {k: [p.detach().clone() for p in (v.parameters() if hasattr(v, "parameters") else [v])]
              for k, v in parts.items()}
    with torch.no_grad():
        for p in model.trainable_named_parameters().values():
            p.add_(1.0)
    model.ema.update()
    with model.ema_weights():
        for name, module in parts.items():
            now = list(module.parameters()) if hasattr(module, "parameters") else [module]
            moved = [not torch.equal(a, b) for a, b in zip(now, before[name])]
            assert all(moved), f"EMA does not track every parameter of {name}"
    # the frozen first stage is not trained and not averaged
    assert not any(p.requires_grad for p in model.first_stage.parameters())
    n_trainable = len(model.trainable_named_parameters())
    assert len([b for b in model.ema.state_dict() if b.startswith("shadow_")]) == n_trainable


def test_frozen_cf_tower_is_left_out_of_optimiser_and_ema(repo_root):
    model, _ = build_model(repo_root, "model.params.cf_encoder_config.trainable=false")
    trainable = model.trainable_named_parameters()
    assert not any(name.startswith("cf_encoder.tower.") for name in trainable)
    assert "cf_encoder.proj.weight" in trainable and "null_context" in trainable


def test_sd_locked_freezes_the_unet_encoder_but_not_decoder_or_controlnet(repo_root):
    model, _ = build_model(repo_root, "model.params.controlnet.sd_locked=true")
    names = model.trainable_named_parameters()
    assert not any(n.startswith("unet.encoder.") for n in names)
    assert any(n.startswith("unet.output_blocks.") for n in names)
    assert any(n.startswith("controlnet.encoder.") for n in names)
    locked = {n: p.detach().clone() for n, p in model.unet.encoder.named_parameters()}
    opt = model.configure_optimizers()["optimizer"]
    model.diffusion_loss(tiny_batch(), torch.Generator().manual_seed(0))[0].mean().backward()  # no no_grad: gradients flow through the lock
    opt.step()
    assert all(torch.equal(p, locked[n]) for n, p in model.unet.encoder.named_parameters())


def test_controlnet_at_init_leaves_the_prediction_unchanged(repo_root):
    model, _ = build_model(repo_root)
    with torch.no_grad():
        torch.nn.init.normal_(model.unet.out[-1].weight, std=0.1)  # else the UNet output is zero anyway
        cond = model.encode_condition(tiny_batch()["cf"])
        x = torch.randn(2, *model.latent_shape, generator=torch.Generator().manual_seed(1))
        t = torch.tensor([10, 900])
        with_control = model.apply_model(x, t, cond)
        without = model.unet(x, t, cond["context"], pooled_cond=cond["pooled"])
    assert without.abs().mean() > 0.01
    assert torch.equal(with_control, without)


def test_pooled_cf_vector_conditions_unet_and_controlnet_and_is_zero_when_dropped(repo_root):
    model, cfg = build_model(repo_root)
    width = cfg.model.params.unet_config.pooled_cond_dim
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in model.trainable_named_parameters().values():  # zero-initialised layers would hide the path
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        cond = model.encode_condition(tiny_batch()["cf"])
        assert cond["pooled"].shape == (2, width)
        null = model.null_condition(cond)
        assert torch.count_nonzero(null["pooled"]) == 0 and null["pooled"].shape == (2, width)
        x = torch.randn(2, *model.latent_shape, generator=torch.Generator().manual_seed(1))
        t = torch.tensor([10, 900])
        ref = model.apply_model(x, t, cond)
        no_pooled = model.apply_model(x, t, {**cond, "pooled": torch.zeros_like(cond["pooled"])})
        control_only = model.controlnet(x, t, cond["context"], cond["hint"], pooled_cond=torch.zeros(2, width))
        mixed = model.unet(x, t, cond["context"], control=control_only, pooled_cond=cond["pooled"])
    assert not torch.allclose(ref, no_pooled)
    assert not torch.allclose(ref, mixed)  # the ControlNet branch sees the pooled vector too
    with pytest.raises(ValueError, match="pooled_dim is set from unet_config.pooled_cond_dim"):
        build_model(repo_root, "model.params.cf_encoder_config.pooled_dim=8")


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp-2m"])
def test_sample_shape_range_determinism_and_per_item_generators(repo_root, sampler):
    model, _ = build_model(repo_root)
    cf = tiny_batch(3)["cf"]
    a = model.sample(cf, steps=2, guidance_scale=2.0, generator=torch.Generator().manual_seed(5), sampler=sampler)
    b = model.sample(cf, steps=2, guidance_scale=2.0, generator=torch.Generator().manual_seed(5), sampler=sampler)
    assert a.shape == (3, 6, 32, 32) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    # one generator per item: an item's sample does not depend on the rest of the batch
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    full = model.sample(cf, steps=2, generator=gens([1, 2, 3]), sampler=sampler)
    alone = model.sample(cf[1:2], steps=2, generator=gens([2]), sampler=sampler)
    torch.testing.assert_close(full[1:2], alone, atol=1e-5, rtol=0)
    assert model.training  # sampling restores the training mode


def test_checkpoint_round_trip_restores_ema_for_inference(repo_root, tmp_path):
    model, cfg = build_model(repo_root)
    with torch.no_grad():
        for p in model.trainable_named_parameters().values():
            p.add_(0.01 * torch.randn_like(p))
    model.ema.update()
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(OmegaConf.to_yaml(cfg))
    loaded = ControlLDM.load_for_inference(ckpt, config_path)
    cf = tiny_batch()["cf"]
    expected = model.sample(cf, steps=2, generator=torch.Generator().manual_seed(0))
    got = loaded.sample(cf, steps=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(got, expected)
    assert loaded.ema.num_updates == 1


def test_bad_settings_are_clear_errors(repo_root):
    with pytest.raises(ValueError, match="control_scales has 2 entries"):
        build_model(repo_root, "model.params.controlnet.control_scales=[1.0,1.0]")
    with pytest.raises(ValueError, match="exactly one of first_stage"):
        build_model(repo_root, "model.params.first_stage=/nowhere/export")
    with pytest.raises(ValueError, match="unknown keys \\['scales'\\]"):
        build_model(repo_root, "model.params.controlnet.scales=2.0")
    with pytest.raises(ValueError, match="needs controlnet.enabled=true"):
        build_model(repo_root, "model.params.controlnet.enabled=false", "model.params.controlnet.sd_locked=true")
    with pytest.raises(ValueError, match="parameterization"):
        build_model(repo_root, "model.params.parameterization=x0")


def test_full_size_aptos_config_builds_with_the_pooled_cf_vector(repo_root):
    """configs/dm/aptos_cldm.yaml on the meta device (no memory): latent, token and pooled shapes."""
    ae = load_config([repo_root / "configs/ae/aptos_kl_f8.yaml"]).model
    cfg = load_config([repo_root / "configs/dm/aptos_cldm.yaml"], ["model.params.first_stage=null",
                                                                   "model.params.scale_factor=0.18"])
    cfg.model.params.first_stage_config = {"target": ae.target, "params": {"ddconfig": ae.params.ddconfig}}
    with torch.device("meta"):
        model = instantiate_from_config(cfg.model)
        cond = model.encode_condition(torch.zeros(2, 3, 256, 256))
    assert model.latent_shape == (4, 32, 48)
    assert cond["context"].shape == (2, 196, 768)  # ViT-B-16 at 224: 14x14 patch tokens
    assert cond["pooled"].shape == (2, 768)
    assert model.unet.encoder.label_emb[0].in_features == 768
    assert model.controlnet.encoder.label_emb[0].in_features == 768


def test_ddp_does_not_broadcast_the_ema_shadows(repo_root, tmp_path, monkeypatch):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model, _ = build_model(repo_root)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(model)
        broadcast = [name for name in ddp.named_module_buffers]
        assert broadcast and not [name for name in broadcast if name.startswith("ema.")]
        assert len(model.ema._shadows()) == len(model.trainable_named_parameters())
    finally:
        dist.destroy_process_group()


def test_fsdp_is_refused_when_fitting_starts_and_names_ddp(repo_root):
    from pytorch_lightning.strategies import FSDPStrategy
    from types import SimpleNamespace

    model, _ = build_model(repo_root)
    model._trainer = SimpleNamespace(strategy=FSDPStrategy())
    with pytest.raises(ValueError, match="strategy=fsdp is not supported.*Use trainer.strategy=ddp"):
        model.setup("fit")


def test_inference_loading_merges_the_ema_once(repo_root):
    model, _ = build_model(repo_root)
    with torch.no_grad():
        for p in model.trainable_named_parameters().values():
            p.add_(1.0)
    expected = model.sample(tiny_batch()["cf"], steps=2, generator=torch.Generator().manual_seed(0))
    model.merge_ema()
    assert model.ema is None and not model.use_ema
    got = model.sample(tiny_batch()["cf"], steps=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(got, expected)


def test_low_precision_sampling_stays_close_to_float32(repo_root):
    model, _ = build_model(repo_root)
    with torch.no_grad():  # a model whose output is not exactly zero
        for p in model.trainable_named_parameters().values():
            p.add_(0.02 * torch.randn_like(p))
    cf = tiny_batch()["cf"]
    sample = lambda precision: model.sample(cf, steps=3, guidance_scale=2.0, precision=precision,  # noqa: E731
                                            use_ema=False, generator=torch.Generator().manual_seed(0))
    reference = sample("fp32")
    for precision in ("bf16", "fp16"):
        low = sample(precision)
        assert low.dtype == torch.float32 and low.shape == reference.shape
        assert 0 < (low - reference).abs().max() < 0.1, precision
    with pytest.raises(ValueError, match="precision must be one of"):
        sample("int8")
