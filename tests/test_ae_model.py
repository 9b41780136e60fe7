"""Stage-1 autoencoder parts: shapes, posterior, loss terms, parameter count of the full-size config."""
import math

import pytest
import torch

from eyeoct.config import instantiate_from_config, load_config
from ldm.models.autoencoder import AutoencoderKL
from ldm.modules.discriminator import hinge_discriminator_loss, hinge_generator_loss
from ldm.modules.distributions import DiagonalGaussianDistribution
from ldm.modules.losses import AutoencoderLoss



def tiny_ae(in_channels: int, ch_mult, **kwargs) -> AutoencoderKL:
    ddconfig = dict(ch=8, ch_mult=ch_mult, num_res_blocks=1, in_channels=in_channels, out_ch=in_channels,
                    z_channels=4, num_groups=4)
    return AutoencoderKL(ddconfig=ddconfig, **kwargs)


@pytest.mark.parametrize("ch_mult,f", [([1, 2, 4], 4), ([1, 2, 2, 4], 8)])
@pytest.mark.parametrize("channels", [1, 6])
def test_encode_decode_shapes(ch_mult, f, channels):
    torch.manual_seed(0)
    model = tiny_ae(channels, ch_mult)
    x = torch.rand(2, channels, 32, 48) * 2 - 1
    posterior = model.encode(x)
    assert model.downsampling_factor == f
    assert posterior.mean.shape == (2, 4, 32 // f, 48 // f)
    assert posterior.sample().shape == (2, 4, 32 // f, 48 // f)
    assert model.decode(posterior.mode()).shape == x.shape


def test_kl_of_standard_normal_is_zero_and_matches_formula():
    moments = torch.zeros(3, 8, 4, 5)  # mean 0, logvar 0
    assert torch.equal(DiagonalGaussianDistribution(moments).kl(), torch.zeros(3))
    moments = torch.cat([torch.full((1, 4, 2, 2), 0.5), torch.full((1, 4, 2, 2), math.log(2.0))], dim=1)
    expected = 16 * 0.5 * (0.25 + 2.0 - 1.0 - math.log(2.0))  # 16 latent elements
    assert DiagonalGaussianDistribution(moments).kl().item() == pytest.approx(expected, rel=1e-6)


def test_posterior_sampling_clamps_and_follows_generator():
    moments = torch.cat([torch.zeros(2, 4, 3, 3), torch.full((2, 4, 3, 3), 100.0)], dim=1)
    dist = DiagonalGaussianDistribution(moments)
    assert dist.logvar.max().item() == 20.0
    a = dist.sample(torch.Generator().manual_seed(3))
    b = dist.sample(torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, dist.sample(torch.Generator().manual_seed(4)))


def test_moments_with_odd_channels_are_rejected():
    with pytest.raises(ValueError, match="even channel count"):
        DiagonalGaussianDistribution(torch.zeros(1, 3, 2, 2))


def test_wrong_input_channels_name_the_key():
    model = tiny_ae(6, [1, 2])
    with pytest.raises(ValueError, match=r"'oct' must be \[B, 6, H, W\]"):
        model.get_input({"oct": torch.zeros(1, 3, 16, 16)})
    with pytest.raises(KeyError, match="no tensor under 'oct'"):
        model.get_input({"cf": torch.zeros(1, 3, 16, 16)})


def test_hinge_losses_on_known_logits():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    # real: relu(1-2)=0, relu(1-0)=1 -> 0.5; fake: relu(1-2)=0, relu(1.5)=1.5 -> 0.75
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.5 + 0.75))
    assert hinge_generator_loss(fake).item() == pytest.approx(0.75)


def test_adaptive_weight_is_ratio_of_gradient_norms():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    rec = (3.0 * w).sum()  # grad (3, 3), norm 3*sqrt(2)
    g = (w**2).sum()  # grad (2, 4), norm sqrt(20)
    expected = 3 * math.sqrt(2) / (math.sqrt(20) + 1e-4)
    assert AutoencoderLoss.adaptive_weight(rec, g, w).item() == pytest.approx(expected, rel=1e-6)


def test_generator_loss_leaves_discriminator_without_gradient():
    torch.manual_seed(0)
    model = tiny_ae(6, [1, 2], lossconfig={"target": "ldm.modules.losses.AutoencoderLoss", "params": {
        "discriminator": {"start_step": 0, "channels": 8, "num_layers": 2, "num_groups": 4}}})
    x = torch.rand(2, 6, 16, 16) * 2 - 1
    recon, posterior = model(x)
    loss, logs = model.loss.generator_loss(x, recon, posterior, 0, model.decoder.last_layer)
    loss.backward()
    assert {"rec", "kl", "g", "d_weight"} <= set(logs) and logs["d_weight"] > 0
    assert all(p.grad is None for p in model.loss.discriminator.parameters())
    assert model.decoder.last_layer.grad.abs().sum() > 0
    d_loss, _ = model.loss.discriminator_loss(x, recon, 0)
    model.zero_grad(set_to_none=True)
    d_loss.backward()
    assert model.decoder.last_layer.grad is None
    assert all(p.grad is not None for p in model.loss.discriminator.parameters())


def test_perceptual_term_without_weights_names_the_file(tmp_path):
    missing = tmp_path / "vgg16-397923af.pth"
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        AutoencoderLoss(perceptual_weight=0.1, perceptual={
            "target": "eyeoct.metrics.lpips.LPIPS",
            "params": {"backbone_weights": str(missing), "linear_weights": str(tmp_path / "vgg.pth"), "net": "vgg"}})


def _conv(k, cin, cout):
    return k * k * cin * cout + cout


def _resblock(cin, cout):
    return 2 * cin + _conv(3, cin, cout) + 2 * cout + _conv(3, cout, cout) + (_conv(1, cin, cout) if cin != cout else 0)


def _mid(c):
    return 2 * _resblock(c, c) + 2 * c + _conv(1, c, 3 * c) + _conv(1, c, c)


def expected_autoencoder_parameters(ch, ch_mult, nrb, cin, cout, z):
    """Parameter count from the architecture's formula (convs, GroupNorms, attention)."""
    widths = [ch * m for m in ch_mult]
    enc, c = _conv(3, cin, ch), ch
    for level, w in enumerate(widths):
        for _ in range(nrb):
            enc, c = enc + _resblock(c, w), w
        if level < len(widths) - 1:
            enc += _conv(3, c, c)
    enc += _mid(c) + 2 * c + _conv(3, c, 2 * z)
    dec, c = _conv(3, z, widths[-1]) + _mid(widths[-1]), widths[-1]
    for level in reversed(range(len(widths))):
        for _ in range(nrb + 1):
            dec, c = dec + _resblock(c, widths[level]), widths[level]
        if level > 0:
            dec += _conv(3, c, c)
    dec += 2 * c + _conv(3, c, cout)
    return enc + dec + _conv(1, 2 * z, 2 * z) + _conv(1, z, z)


def test_full_size_config_parameter_count(repo_root):
    cfg = load_config([repo_root / "configs/ae/aptos_kl_f8.yaml"])
    with torch.device("meta"):
        model = instantiate_from_config(cfg.model)
    autoencoder = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("loss."))
    expected = expected_autoencoder_parameters(128, [1, 2, 4, 4], 2, 6, 6, 4)
    assert autoencoder == expected
    # Cross-check: Stable Diffusion's 3-channel kl-f8 VAE has 83,653,863 parameters; 6 channels in and out
    # add 9*3*128 weights to conv_in and 9*128*3 + 3 to conv_out.
    assert expected == 83_653_863 + 9 * 3 * 128 + 9 * 128 * 3 + 3
    disc = sum(p.numel() for p in model.loss.discriminator.parameters())
    # PatchGAN 6->64->128->256->512->1 (4x4 convs, bias only on first and last, GroupNorm affine on the rest)
    assert disc == (16 * 6 * 64 + 64) + 16 * 64 * 128 + 256 + 16 * 128 * 256 + 512 + 16 * 256 * 512 + 1024 + (16 * 512 + 1)
    assert model.downsampling_factor == 8


def test_fsdp_with_gan_is_refused_clearly(repo_root):
    # Lightning's FSDP needs GPUs; a stand-in trainer carrying an FSDPStrategy is enough for the check.
    from types import SimpleNamespace

    from pytorch_lightning.strategies import FSDPStrategy

    model = instantiate_from_config(load_config([repo_root / "configs/ae/tiny_test.yaml"]).model)
    model._trainer = SimpleNamespace(strategy=FSDPStrategy.__new__(FSDPStrategy),
                                     precision_plugin=SimpleNamespace(scaler=None))
    with pytest.raises(ValueError, match="use strategy ddp"):
        model.on_fit_start()
