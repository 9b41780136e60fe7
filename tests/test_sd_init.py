"""SD init on a tiny hand-built state dict that uses Stable Diffusion's key names."""
import pytest
import torch
from safetensors.torch import save_file

from ldm.modules.unet import UNetEncoder, UNetModel
from ldm.sd_init import init_unet_from_sd

# Tiny SD-1.x-style UNet: 32 channels, mult (1, 2), one res block, attention at factor 2, conv proj, context 24.
OURS = dict(
    in_channels=4, out_channels=4, model_channels=32, channel_mult=[1, 2], num_res_blocks=1,
    attention_resolutions=[2], num_head_channels=16, context_dim=16, use_linear_in_transformer=True,
)


def resblock(prefix, cin, cout, emb=128):
    shapes = {
        "in_layers.0.weight": (cin,), "in_layers.0.bias": (cin,),
        "in_layers.2.weight": (cout, cin, 3, 3), "in_layers.2.bias": (cout,),
        "emb_layers.1.weight": (cout, emb), "emb_layers.1.bias": (cout,),
        "out_layers.0.weight": (cout,), "out_layers.0.bias": (cout,),
        "out_layers.3.weight": (cout, cout, 3, 3), "out_layers.3.bias": (cout,),
    }
    if cin != cout:
        shapes.update({"skip_connection.weight": (cout, cin, 1, 1), "skip_connection.bias": (cout,)})
    return {f"{prefix}.{k}": v for k, v in shapes.items()}


def transformer(prefix, c, ctx=24):
    shapes = {
        "norm.weight": (c,), "norm.bias": (c,),
        "proj_in.weight": (c, c, 1, 1), "proj_in.bias": (c,),
        "proj_out.weight": (c, c, 1, 1), "proj_out.bias": (c,),
    }
    block = "transformer_blocks.0."
    for attn, kv in (("attn1", c), ("attn2", ctx)):
        shapes.update({
            f"{block}{attn}.to_q.weight": (c, c), f"{block}{attn}.to_k.weight": (c, kv),
            f"{block}{attn}.to_v.weight": (c, kv),
            f"{block}{attn}.to_out.0.weight": (c, c), f"{block}{attn}.to_out.0.bias": (c,),
        })
    for norm in ("norm1", "norm2", "norm3"):
        shapes.update({f"{block}{norm}.weight": (c,), f"{block}{norm}.bias": (c,)})
    shapes.update({
        f"{block}ff.net.0.proj.weight": (8 * c, c), f"{block}ff.net.0.proj.bias": (8 * c,),
        f"{block}ff.net.2.weight": (c, 4 * c), f"{block}ff.net.2.bias": (c,),
    })
    return {f"{prefix}.{k}": v for k, v in shapes.items()}


def sd_tiny_shapes():
    s = {"time_embed.0.weight": (128, 32), "time_embed.0.bias": (128,),
         "time_embed.2.weight": (128, 128), "time_embed.2.bias": (128,),
         "input_blocks.0.0.weight": (32, 4, 3, 3), "input_blocks.0.0.bias": (32,)}
    s.update(resblock("input_blocks.1.0", 32, 32))
    s.update({"input_blocks.2.0.op.weight": (32, 32, 3, 3), "input_blocks.2.0.op.bias": (32,)})
    s.update(resblock("input_blocks.3.0", 32, 64))
    s.update(transformer("input_blocks.3.1", 64))
    s.update(resblock("middle_block.0", 64, 64))
    s.update(transformer("middle_block.1", 64))
    s.update(resblock("middle_block.2", 64, 64))
    s.update(resblock("output_blocks.0.0", 128, 64))
    s.update(transformer("output_blocks.0.1", 64))
    s.update(resblock("output_blocks.1.0", 96, 64))
    s.update(transformer("output_blocks.1.1", 64))
    s.update({"output_blocks.1.2.conv.weight": (64, 64, 3, 3), "output_blocks.1.2.conv.bias": (64,)})
    s.update(resblock("output_blocks.2.0", 96, 32))
    s.update(resblock("output_blocks.3.0", 64, 32))
    s.update({"out.0.weight": (32,), "out.0.bias": (32,), "out.2.weight": (4, 32, 3, 3), "out.2.bias": (4,)})
    return s


def sd_tiny_state_dict():
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(shape, generator=gen) for k, shape in sd_tiny_shapes().items()}


def test_hand_built_dict_has_the_expected_size():
    assert len(sd_tiny_shapes()) == 208


def test_sd_init_report_counts_and_values(tmp_path):
    sd = sd_tiny_state_dict()
    del sd["out.2.weight"], sd["out.2.bias"]  # -> 2 missing
    sd["label_emb.0.0.weight"] = torch.zeros(128, 10)  # -> 1 unused
    full = {"model.diffusion_model." + k: v for k, v in sd.items()}
    full["first_stage_model.encoder.conv_in.weight"] = torch.zeros(1)  # not part of the UNet: ignored
    path = tmp_path / "sd_tiny.safetensors"
    save_file(full, str(path))

    model = UNetModel(**OURS)
    report = init_unet_from_sd(model, path)
    # context 24 in SD vs 16 here: attn2.to_k/to_v of 4 transformers mismatch
    assert len(report.mismatched) == 8
    assert all(k.endswith(("attn2.to_k.weight", "attn2.to_v.weight")) for k, _, _ in report.mismatched)
    assert report.missing == ["out.2.weight", "out.2.bias"]
    assert report.unexpected == ["label_emb.0.0.weight"]
    assert len(report.loaded) == 208 - 2 - 8
    assert len(report.loaded) + len(report.missing) + len(report.mismatched) == len(model.state_dict())

    state = model.state_dict()
    torch.testing.assert_close(state["encoder.time_embed.2.weight"], sd["time_embed.2.weight"])
    torch.testing.assert_close(state["output_blocks.1.2.conv.weight"], sd["output_blocks.1.2.conv.weight"])
    # conv 1x1 proj in SD -> linear proj here
    torch.testing.assert_close(
        state["encoder.input_blocks.3.1.proj_in.weight"], sd["input_blocks.3.1.proj_in.weight"][:, :, 0, 0]
    )
    assert torch.count_nonzero(state["out.2.weight"]) == 0  # missing: keeps its zero init


def test_sd_init_of_an_encoder_from_torch_checkpoint(tmp_path):
    sd = sd_tiny_state_dict()
    path = tmp_path / "sd_tiny.ckpt"
    torch.save({"state_dict": sd}, path)
    encoder = UNetEncoder(**{**OURS, "context_dim": 24, "use_linear_in_transformer": False})
    report = init_unet_from_sd(encoder, path)
    decoder_keys = [k for k in sd if k.startswith(("output_blocks", "out."))]
    assert sorted(report.unexpected) == sorted(decoder_keys)
    assert report.missing == [] and report.mismatched == []
    assert len(report.loaded) == 208 - len(decoder_keys) == 102
    key = "middle_block.1.proj_out.weight"
    torch.testing.assert_close(encoder.state_dict()[key], sd[key])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="sd_unet.safetensors"):
        init_unet_from_sd(UNetModel(**OURS), tmp_path / "sd_unet.safetensors")


@pytest.mark.parametrize(
    "kwargs, published",
    [
        # SD v1.x UNet (CompVis config): 859,520,964 parameters
        (dict(num_heads=8, num_head_channels=-1, context_dim=768, use_linear_in_transformer=False), 859_520_964),
        # SD v2.x UNet (Stability config): 865,910,724 parameters
        (dict(num_head_channels=64, context_dim=1024, use_linear_in_transformer=True), 865_910_724),
    ],
)
def test_full_size_config_reproduces_the_sd_unet_parameter_count(kwargs, published):
    sd_layout = dict(in_channels=4, out_channels=4, model_channels=320, channel_mult=[1, 2, 4, 4],
                     num_res_blocks=2, attention_resolutions=[1, 2, 4])
    with torch.device("meta"):
        model = UNetModel(**sd_layout, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == published
