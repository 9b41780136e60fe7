"""Gradient checkpointing of the stage-1 encoder/decoder and of the CF encoder tower: same values and
gradients as without it (the UNet's own check is in test_unet.py), BatchNorm statistics updated once."""
import pytest
import torch

from cldm.cf_encoder import CFEncoder
from eyeoct.config import instantiate_from_config
from ldm.models.autoencoder import AutoencoderKL
from stand_ins import randomise

DDCONFIG = dict(ch=16, ch_mult=[1, 2, 4], num_res_blocks=1, in_channels=6, out_ch=6, z_channels=4, num_groups=8)
LOSS = {"target": "ldm.modules.losses.AutoencoderLoss",
        "params": {"l1_weight": 1.0, "ssim_weight": 0.2, "kl_weight": 1e-6,
                   "discriminator": {"start_step": 0, "weight": 0.1, "channels": 16, "num_layers": 2,
                                     "num_groups": 8}}}
TINY_VIT = dict(image_size=32, patch_size=8, width=32, layers=2, head_width=16)
TINY_RESNET = dict(image_size=64, layers=[2, 1, 1, 1], width=16, head_width=16)


def _pair(build, checkpoint_kwarg: dict):
    plain = build({})
    randomise(plain, scale=0.2)
    ckpt = build(checkpoint_kwarg)
    ckpt.load_state_dict(plain.state_dict())
    return plain, ckpt


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


def _assert_same(results):
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for name, grad in grads_a.items():
        torch.testing.assert_close(grad, grads_b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_autoencoder_checkpointing_gives_the_same_loss_and_gradients_with_the_gan_weight():
    """The full generator loss, including the adaptive GAN weight (a grad w.r.t. the checkpointed last
    layer before the backward pass) and dropout (same mask on recomputation)."""
    def build(extra):
        torch.manual_seed(0)
        return AutoencoderKL(ddconfig={**DDCONFIG, "dropout": 0.2, **extra}, lossconfig=LOSS).train()

    plain, ckpt = _pair(build, {"use_checkpoint": True})
    assert ckpt.encoder.use_checkpoint and ckpt.decoder.use_checkpoint and not plain.decoder.use_checkpoint
    x = torch.rand(2, 6, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(5)  # dropout and the posterior sample draw the same numbers in both runs
        recon, posterior = model(x)
        loss, terms = model.loss.generator_loss(x, recon, posterior, global_step=1,
                                                last_layer=model.decoder.last_layer)
        assert "d_weight" in terms
        loss.backward()
        results.append((loss.detach(), _grads(model)))
    _assert_same(results)


def test_autoencoder_checkpointing_is_a_config_key_and_inference_is_unchanged():
    model = instantiate_from_config({"target": "ldm.models.autoencoder.AutoencoderKL",
                                     "params": {"ddconfig": {**DDCONFIG, "use_checkpoint": True}}})
    assert model.encoder.use_checkpoint and model.decoder.use_checkpoint
    plain = AutoencoderKL(ddconfig=DDCONFIG)
    plain.load_state_dict(model.state_dict())
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        assert torch.equal(model.decode(z), plain.decode(z))
    with pytest.raises(ValueError, match="unknown keys \\['checkpoint'\\]"):
        AutoencoderKL(ddconfig={**DDCONFIG, "checkpoint": True})


@pytest.mark.parametrize("vision_cfg", [TINY_VIT, TINY_RESNET], ids=["vit", "resnet"])
def test_cf_encoder_checkpointing_gives_the_same_tokens_and_gradients(vision_cfg):
    def build(extra):
        torch.manual_seed(0)
        return CFEncoder(context_dim=24, vision_cfg=vision_cfg, pooled_dim=12, **extra).train()

    plain, ckpt = _pair(build, {"use_checkpoint": True})
    if ckpt.is_resnet:  # the checks below would pass trivially if the wrapper never checkpointed
        assert ckpt.use_checkpoint
    else:
        assert ckpt.tower.transformer.grad_checkpointing and not plain.tower.transformer.grad_checkpointing
    cf = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    results = []
    for model in (plain, ckpt):
        tokens, pooled = model.encode(cf)
        (tokens.square().mean() + pooled.square().mean()).backward()
        results.append((torch.cat([tokens.flatten(), pooled.flatten()]).detach(), _grads(model)))
    _assert_same(results)
    # BatchNorm running statistics moved once per forward, not again during the recomputation
    for (name, a), (_, b) in zip(plain.tower.named_buffers(), ckpt.tower.named_buffers()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0, msg=name)


def test_resnet_checkpointing_recomputes_in_backward_and_saves_memory():
    """Checkpointing is really on: fewer bytes saved for the backward pass, and the bottlenecks run twice."""
    def saved_bytes(model, cf):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.encode(cf)[0].sum().backward()
        return total

    def build(extra):
        torch.manual_seed(0)
        return CFEncoder(context_dim=24, vision_cfg=TINY_RESNET, **extra).train()

    plain, ckpt = _pair(build, {"use_checkpoint": True})
    calls = []
    ckpt.tower.layer1[1].register_forward_pre_hook(lambda *_: calls.append(1))
    cf = torch.rand(2, 3, 64, 64) * 2 - 1
    assert saved_bytes(ckpt, cf) < 0.5 * saved_bytes(plain, cf)
    assert len(calls) == 2
