"""ControlNet branch: zero-initialised no-op, control counts and scales, hint sizes, init from the UNet."""
import pytest
import torch

from cldm.controlnet import ControlNet, HintEncoder, num_downsampling_stages
from ldm.modules.unet import UNetModel
from stand_ins import randomise

UNET = dict(in_channels=4, out_channels=4, model_channels=32, channel_mult=[1, 2], num_res_blocks=1,
            attention_resolutions=[2], num_head_channels=16, context_dim=24, num_groups=8)


def _inputs(batch=2, size=8, cf_size=32):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 4, size, size, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    context = torch.randn(batch, 5, 24, generator=g)
    cf = torch.rand(batch, 3, cf_size, cf_size, generator=g) * 2 - 1
    return x, t, context, cf


def test_zero_convs_leave_the_unet_output_exactly_unchanged_at_init():
    torch.manual_seed(0)
    unet = UNetModel(**UNET)
    randomise(unet.out, seed=7)  # the UNet's own zero-initialised output conv would hide any difference
    control = ControlNet(UNET, hint_stages=2)
    x, t, context, cf = _inputs()
    hint = control.encode_hint(cf, x.shape[-2:])
    with torch.no_grad():
        plain = unet(x, t, context)
        controlled = unet(x, t, context, control=control(x, t, context, hint))
    assert plain.abs().mean() > 0.01
    assert torch.equal(plain, controlled)
    # the branch does act once its zero convs have learned something
    randomise(control.zero_convs, seed=7)
    with torch.no_grad():
        changed = unet(x, t, context, control=control(x, t, context, hint))
    assert (changed - plain).abs().mean() > 1e-3


def test_one_zero_conv_per_skip_and_middle_following_the_unet():
    control = ControlNet(UNET, hint_stages=2)
    unet = UNetModel(**UNET)
    assert len(control.zero_convs) == len(unet.skip_channels) == 5  # conv_in, res x2, downsample, middle
    assert [c.in_channels for c in control.zero_convs] == unet.skip_channels


def test_control_scales_count_is_validated():
    n = len(UNetModel(**UNET).skip_channels)
    assert ControlNet(UNET, hint_stages=1, control_scales=[0.5] * n).control_scales == [0.5] * n
    with pytest.raises(ValueError, match=f"control_scales has 13 entries but this UNet has {n}"):
        ControlNet(UNET, hint_stages=1, control_scales=[1.0] * 13)


def test_control_scales_multiply_each_output():
    torch.manual_seed(0)
    control = ControlNet(UNET, hint_stages=2)
    randomise(control.zero_convs, seed=7)
    x, t, context, cf = _inputs()
    hint = control.encode_hint(cf, x.shape[-2:])
    base = control(x, t, context, hint)
    control.control_scales = [0.0] * 4 + [2.0]
    scaled = control(x, t, context, hint)
    assert all(torch.equal(s, torch.zeros_like(s)) for s in scaled[:-1])
    torch.testing.assert_close(scaled[-1], 2.0 * base[-1])


def test_only_mid_control_zeros_the_skip_controls_and_freezes_their_convs():
    control = ControlNet(UNET, hint_stages=2, only_mid_control=True)
    randomise(control.zero_convs, seed=7)
    x, t, context, cf = _inputs()
    out = control(x, t, context, control.encode_hint(cf, x.shape[-2:]))
    assert all(torch.equal(o, torch.zeros_like(o)) for o in out[:-1])
    assert out[-1].abs().sum() > 0
    assert not any(p.requires_grad for p in control.zero_convs[:-1].parameters())


@pytest.mark.parametrize("cf_size,latent,stages", [(64, 8, 3), (256, 32, 3), (32, 8, 2), (512, 32, 4), (8, 8, 0)])
def test_hint_encoder_downsamples_to_the_latent_size_from_the_size_ratio(cf_size, latent, stages):
    assert num_downsampling_stages(cf_size, latent) == stages
    enc = HintEncoder(3, 32, stages, hidden_channels=[8, 16])
    strided = [m for m in enc.body if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == stages
    assert enc(torch.zeros(1, 3, cf_size, cf_size), (latent, latent * 3 // 2)).shape == (1, 32, latent, latent * 3 // 2)


def test_init_from_unet_copies_the_encoder_weights():
    torch.manual_seed(0)
    unet = UNetModel(**UNET)
    control = ControlNet(UNET, hint_stages=2)
    control.init_from_unet(unet)
    for (name, a), (_, b) in zip(unet.encoder.state_dict().items(), control.encoder.state_dict().items()):
        assert torch.equal(a, b), name


def test_unit_control_scale_returns_the_zero_conv_output_itself():
    """Scale 1 skips the multiplication: exactly the zero conv's output, for every control."""
    torch.manual_seed(0)
    control = ControlNet(UNET, hint_stages=2)
    randomise(control.zero_convs, seed=7)
    x, t, context, cf = _inputs()
    hint = control.encode_hint(cf, x.shape[-2:])
    with torch.no_grad():
        feats = control.encoder(x, t, context, hint=hint)
        out = control(x, t, context, hint)
    for conv, feat, result in zip(control.zero_convs, feats, out):
        assert torch.equal(result, conv(feat))
