"""SDPA attention against the explicit formula; transformer block structure and projections."""
import math

import pytest
import torch

from ldm.modules.attention import Attention, OCTTransformerBlock, SpatialTransformer, resolve_heads


def explicit_attention(module: Attention, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) V per head, written out by hand."""
    b, n, _ = x.shape
    h, d = module.heads, module.dim_head
    q = (x @ module.to_q.weight.T).view(b, n, h, d).permute(0, 2, 1, 3)
    k = (context @ module.to_k.weight.T).view(b, context.shape[1], h, d).permute(0, 2, 1, 3)
    v = (context @ module.to_v.weight.T).view(b, context.shape[1], h, d).permute(0, 2, 1, 3)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    out = (weights @ v).permute(0, 2, 1, 3).reshape(b, n, h * d)
    return out @ module.to_out[0].weight.T + module.to_out[0].bias


def test_self_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    attn = Attention(query_dim=24, heads=3, dim_head=8).eval()
    x = torch.randn(2, 10, 24)
    torch.testing.assert_close(attn(x), explicit_attention(attn, x, x), rtol=1e-5, atol=1e-5)


def test_cross_attention_matches_explicit_softmax():
    torch.manual_seed(1)
    attn = Attention(query_dim=16, heads=2, dim_head=12, context_dim=20).eval()
    x, ctx = torch.randn(3, 9, 16), torch.randn(3, 5, 20)
    out = attn(x, context=ctx)
    assert out.shape == (3, 9, 16)
    torch.testing.assert_close(out, explicit_attention(attn, x, ctx), rtol=1e-5, atol=1e-5)


def test_cross_attention_rejects_missing_or_wrong_context():
    attn = Attention(query_dim=16, heads=2, dim_head=8, context_dim=20)
    with pytest.raises(ValueError, match="context"):
        attn(torch.randn(1, 4, 16))
    with pytest.raises(ValueError, match="20"):
        attn(torch.randn(1, 4, 16), context=torch.randn(1, 3, 19))


def test_resolve_heads_from_heads_or_head_channels():
    assert resolve_heads(64, num_heads=4) == (4, 16)
    assert resolve_heads(64, num_head_channels=32) == (2, 32)
    with pytest.raises(ValueError):
        resolve_heads(64, num_heads=4, num_head_channels=32)
    with pytest.raises(ValueError):
        resolve_heads(48, num_head_channels=32)


def test_transformer_block_is_pre_norm_residual():
    """With every sub-layer's output projection zeroed, the block is exactly the identity."""
    torch.manual_seed(2)
    block = OCTTransformerBlock(dim=16, heads=2, dim_head=8, context_dim=12)
    for lin in (block.attn1.to_out[0], block.attn2.to_out[0], block.ff.net[2]):
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
    x = torch.randn(2, 6, 16)
    assert torch.equal(block(x, torch.randn(2, 3, 12)), x)


def test_transformer_block_follows_the_three_residual_steps():
    torch.manual_seed(3)
    block = OCTTransformerBlock(dim=16, heads=2, dim_head=8, context_dim=12).eval()
    x, ctx = torch.randn(2, 6, 16), torch.randn(2, 3, 12)
    h = block.attn1(block.norm1(x)) + x
    h = block.attn2(block.norm2(h), context=ctx) + h
    h = block.ff(block.norm3(h)) + h
    torch.testing.assert_close(block(x, ctx), h)


@pytest.mark.parametrize("use_linear", [False, True])
def test_spatial_transformer_projection_dims_and_zero_init(use_linear):
    torch.manual_seed(4)
    # inner dim (heads*dim_head = 3*16 = 48) differs from in_channels (32): swapped dims would fail here.
    st = SpatialTransformer(32, heads=3, dim_head=16, depth=2, context_dim=8, use_linear=use_linear)
    assert st.proj_in.weight.shape[:2] == (48, 32)
    assert st.proj_out.weight.shape[:2] == (32, 48)
    assert torch.count_nonzero(st.proj_out.weight) == 0 and torch.count_nonzero(st.proj_out.bias) == 0
    x, ctx = torch.randn(2, 32, 5, 7), torch.randn(2, 4, 8)
    assert torch.equal(st(x, ctx), x)  # zero proj_out: starts as the identity
    torch.nn.init.normal_(st.proj_out.weight)
    out = st(x, ctx)
    assert out.shape == x.shape and not torch.allclose(out, x)


@pytest.mark.parametrize("use_linear", [False, True])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_spatial_transformer_matches_the_plain_formulation_and_keeps_the_input_layout(use_linear, memory_format):
    """Same values as norm -> proj_in -> blocks -> proj_out -> + x written with explicit copies, and the
    output in the input's memory format (a contiguous UNet must not switch to channels_last)."""
    torch.manual_seed(5)
    st = SpatialTransformer(32, heads=2, dim_head=16, depth=1, context_dim=8, use_linear=use_linear).eval()
    torch.nn.init.normal_(st.proj_out.weight, std=0.2)
    x = torch.randn(2, 32, 5, 7).contiguous(memory_format=memory_format)
    ctx = torch.randn(2, 4, 8)
    b, c, height, width = x.shape
    h = st.norm(x)
    if use_linear:
        tokens = st.proj_in(h.permute(0, 2, 3, 1).reshape(b, height * width, c).contiguous())
    else:
        tokens = st.proj_in(h).permute(0, 2, 3, 1).reshape(b, height * width, -1).contiguous()
    tokens = st.transformer_blocks[0](tokens, ctx)
    if use_linear:
        h = st.proj_out(tokens).reshape(b, height, width, c).permute(0, 3, 1, 2).contiguous()
    else:
        h = st.proj_out(tokens.reshape(b, height, width, -1).permute(0, 3, 1, 2).contiguous())
    out = st(x, ctx)
    torch.testing.assert_close(out, x + h, rtol=1e-5, atol=1e-6)
    assert out.is_contiguous(memory_format=memory_format)
