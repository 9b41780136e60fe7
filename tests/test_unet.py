"""UNetEncoder / UNetModel: shapes, control residuals, checkpointing, configuration errors."""
import pytest
import torch

import torch.nn.functional as F

from ldm.modules.unet import UNetEncoder, UNetModel
from ldm.modules.unet_blocks import timestep_embedding

BASE = dict(
    in_channels=4,
    out_channels=3,
    model_channels=16,
    channel_mult=[1, 2],
    num_res_blocks=1,
    attention_resolutions=[2],
    num_head_channels=8,
    num_groups=8,
    transformer_depth=1,
    context_dim=24,
    use_linear_in_transformer=True,
    use_checkpoint=False,
    dropout=0.0,
)


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (zero-initialised layers would make outputs trivially zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def inputs(batch=2, channels=4, size=(16, 16), tokens=5, context_dim=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=gen)
    t = torch.randint(0, 1000, (batch,), generator=gen)
    ctx = torch.randn(batch, tokens, context_dim, generator=gen)
    return x, t, ctx


@pytest.mark.parametrize(
    "overrides, size",
    [
        ({}, (16, 16)),
        ({"channel_mult": [1, 2, 4], "attention_resolutions": [2, 4]}, (16, 24)),
        ({"channel_mult": [1, 2, 4], "attention_resolutions": [1]}, (15, 22)),  # odd sizes round-trip
        ({"attention_resolutions": [], "middle_attention": False, "context_dim": None}, (8, 8)),
        ({"use_linear_in_transformer": False, "num_heads": 2, "num_head_channels": -1}, (8, 12)),
        ({"num_res_blocks": 2, "use_scale_shift_norm": True, "transformer_depth": [1, 2]}, (16, 8)),
    ],
)
def test_unet_output_shape(overrides, size):
    torch.manual_seed(0)
    kwargs = {**BASE, **overrides}
    model = randomize_(UNetModel(**kwargs))
    x, t, ctx = inputs(size=size)
    out = model(x, t, ctx if kwargs["context_dim"] else None)
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()


def test_encoder_skip_channels_and_feature_shapes():
    kwargs = {**BASE, "channel_mult": [1, 2, 4], "num_res_blocks": 2}
    enc = UNetEncoder(**kwargs)
    # conv_in, 2 res per level, 2 downsamples, middle last
    assert enc.skip_channels == [16, 16, 16, 16, 32, 32, 32, 64, 64, 64]
    x, t, ctx = inputs(size=(16, 16))
    feats = enc(x, t, ctx)
    assert [f.shape[1] for f in feats] == enc.skip_channels
    assert [f.shape[-1] for f in feats] == [16, 16, 16, 8, 8, 8, 4, 4, 4, 4]


def test_encoder_hint_added_after_first_conv():
    torch.manual_seed(0)
    enc = randomize_(UNetEncoder(**BASE))
    x, t, ctx = inputs()
    hint = torch.randn(2, 16, 16, 16)
    with_hint = enc(x, t, ctx, hint=hint)
    plain = enc(x, t, ctx)
    torch.testing.assert_close(with_hint[0], plain[0] + hint)
    assert not torch.allclose(with_hint[-1], plain[-1])


def test_fresh_model_predicts_zero():
    x, t, ctx = inputs()
    assert torch.count_nonzero(UNetModel(**BASE)(x, t, ctx)) == 0


def test_zero_control_leaves_output_unchanged_and_nonzero_changes_it():
    torch.manual_seed(0)
    model = randomize_(UNetModel(**BASE)).eval()
    x, t, ctx = inputs()
    feats = model.encoder(x, t, ctx)
    zeros = [torch.zeros_like(f) for f in feats]
    ref = model(x, t, ctx)
    assert torch.equal(model(x, t, ctx, control=zeros), ref)
    for index in (0, len(zeros) - 1):  # first skip and middle output both reach the output
        control = [z.clone() for z in zeros]
        control[index].normal_()
        assert not torch.allclose(model(x, t, ctx, control=control), ref)
    with pytest.raises(ValueError, match=str(len(feats))):
        model(x, t, ctx, control=zeros[:-1])


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_checkpointing_gives_identical_output_and_gradients(dropout):
    kwargs = {**BASE, "dropout": dropout}
    torch.manual_seed(0)
    plain = randomize_(UNetModel(**kwargs))
    ckpt = UNetModel(**{**kwargs, "use_checkpoint": True})
    ckpt.load_state_dict(plain.state_dict())
    x, t, ctx = inputs()
    results = []
    for model in (plain, ckpt):
        model.zero_grad()
        torch.manual_seed(123)
        out = model(x, t, ctx)
        out.square().mean().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(grad, results[1][1][name], rtol=1e-5, atol=1e-6, msg=name)


def test_pooled_condition_is_embedded_and_added_to_the_time_embedding():
    torch.manual_seed(0)
    model = randomize_(UNetModel(**{**BASE, "pooled_cond_dim": 6})).eval()
    x, t, ctx = inputs()
    g = torch.randn(2, 6, generator=torch.Generator().manual_seed(3))
    first, _, second = model.encoder.label_emb
    by_hand = (model.encoder.time_embed(timestep_embedding(t, BASE["model_channels"]))
               + F.linear(F.silu(F.linear(g, first.weight, first.bias)), second.weight, second.bias))
    torch.testing.assert_close(model.encoder.embed_time(t, g), by_hand)
    out = model(x, t, ctx, pooled_cond=g)
    changed = g.clone()
    changed[1] += 1.0
    other = model(x, t, ctx, pooled_cond=changed)
    assert torch.equal(other[0], out[0])  # per item: only the changed item's prediction moves
    assert not torch.allclose(other[1], out[1])
    with pytest.raises(ValueError, match=r"pooled_cond must have shape \(2, 6\), got None"):
        model(x, t, ctx)
    with pytest.raises(ValueError, match=r"got \(2, 5\)"):
        model(x, t, ctx, pooled_cond=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="no pooled_cond_dim"):
        UNetModel(**BASE)(x, t, ctx, pooled_cond=g)


def test_bad_configuration_and_input_errors():
    with pytest.raises(ValueError, match="attention_resolutions"):
        UNetModel(**{**BASE, "attention_resolutions": [8]})
    with pytest.raises(ValueError, match="num_groups"):
        UNetModel(**{**BASE, "model_channels": 20})  # 20 channels, 8 groups
    model = UNetModel(**BASE)
    x, t, ctx = inputs(channels=3)
    with pytest.raises(ValueError, match=r"\[B, 4, H, W\]"):
        model(x, t, ctx)


def test_denoising_loss_goes_down_on_a_fixed_batch():
    """Gradients reach every part through the zero-initialised layers: a tiny UNet fits eps on one batch."""
    from ldm.models.diffusion import NoiseSchedule

    torch.manual_seed(0)
    model = UNetModel(**{**BASE, "out_channels": 4})
    schedule = NoiseSchedule()
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 4, 8, 8, generator=gen), torch.randn(4, 4, 8, 8, generator=gen)
    t, ctx = torch.tensor([10, 300, 600, 900]), torch.randn(4, 5, 24, generator=gen)
    x_t = schedule.q_sample(x0, t, noise)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        loss = (model(x_t, t, ctx) - noise).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(noise.square().mean().item())  # fresh model predicts zero
    assert losses[-1] < 0.6 * losses[0]
    assert all(p.grad is not None for p in model.parameters())
