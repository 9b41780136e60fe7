"""CF encoder: token shapes, preprocessing, local pretrained weights, freezing."""
import pytest
import torch
from safetensors.torch import save_file

from cldm.cf_encoder import CFEncoder

TINY_VIT = dict(image_size=64, patch_size=8, width=64, layers=2, head_width=32)
TINY_RESNET = dict(image_size=64, layers=[1, 1, 1, 1], width=16, head_width=16)


def test_tiny_vit_gives_patch_tokens_projected_to_context_dim():
    torch.manual_seed(0)
    enc = CFEncoder(context_dim=48, vision_cfg=TINY_VIT)
    tokens = enc(torch.rand(2, 3, 96, 80) * 2 - 1)  # any CF size is resized to the tower's 64x64
    assert enc.num_tokens == (64 // 8) ** 2
    assert tokens.shape == (2, 64, 48)
    assert torch.isfinite(tokens).all()


def test_tiny_modified_resnet_gives_flattened_feature_map_tokens():
    torch.manual_seed(0)
    enc = CFEncoder(context_dim=24, vision_cfg=TINY_RESNET)
    tokens = enc(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert enc.num_tokens == (64 // 32) ** 2
    assert tokens.shape == (3, 4, 24)
    assert enc.tower.attnpool is None  # pooled head dropped: no unused parameters


@pytest.mark.parametrize("vision_cfg", [TINY_VIT, TINY_RESNET], ids=["vit", "resnet"])
def test_pooled_vector_is_the_projected_pooled_feature(vision_cfg):
    torch.manual_seed(0)
    enc = CFEncoder(context_dim=24, vision_cfg=vision_cfg, pooled_dim=40)
    cf = torch.rand(2, 3, 64, 64) * 2 - 1
    tokens, pooled_vec = enc.encode(cf)
    assert pooled_vec.shape == (2, 40)
    assert torch.equal(tokens, enc(cf))
    pooled, raw_tokens = enc.tower_features(enc.preprocess(cf))
    if vision_cfg is TINY_RESNET:  # a ResNet's pooled feature is its mean token
        torch.testing.assert_close(pooled, raw_tokens.mean(dim=1))
    else:  # a ViT's is its class token: not any average of the patch tokens
        assert not torch.allclose(pooled, raw_tokens.mean(dim=1), atol=1e-3)
    proj = enc.pooled_proj
    torch.testing.assert_close(pooled_vec, enc.token_norm(pooled) @ proj.weight.T + proj.bias)
    brighter = enc.encode((cf + 0.5).clamp(-1, 1))[1]
    assert not torch.allclose(brighter, pooled_vec)
    plain = CFEncoder(context_dim=24, vision_cfg=vision_cfg)
    assert plain.encode(cf)[1] is None and plain.pooled_proj is None


def test_preprocess_maps_minus_one_one_to_clip_normalisation():
    enc = CFEncoder(context_dim=8, vision_cfg=TINY_VIT)
    white = enc.preprocess(torch.ones(1, 3, 64, 64))
    expected = (1.0 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711])
    torch.testing.assert_close(white[0, :, 10, 10], expected)


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "open_clip_model.safetensors"
    with pytest.raises(FileNotFoundError, match="open_clip_model.safetensors"):
        CFEncoder(context_dim=8, vision_cfg=TINY_VIT, pretrained=str(missing))


def test_pretrained_full_clip_checkpoint_loads_the_visual_tower(tmp_path):
    torch.manual_seed(1)
    source = CFEncoder(context_dim=8, vision_cfg=TINY_VIT)
    state = {f"visual.{k}": v.contiguous() for k, v in source.tower.state_dict().items()}
    state["visual.proj"] = torch.randn(64, 32)  # pooled projection of a real checkpoint: ignored
    state["text_projection"] = torch.randn(4, 4)  # text tower keys: ignored
    path = tmp_path / "clip.safetensors"
    save_file(state, str(path))
    torch.manual_seed(2)
    loaded = CFEncoder(context_dim=8, vision_cfg=TINY_VIT, pretrained=str(path))
    x = loaded.preprocess(torch.rand(2, 3, 64, 64) * 2 - 1)
    torch.testing.assert_close(loaded.tower_features(x), source.tower_features(x))


def test_pretrained_of_another_architecture_is_rejected(tmp_path):
    other = CFEncoder(context_dim=8, vision_cfg=TINY_RESNET)
    path = tmp_path / "rn.pt"
    torch.save(other.tower.state_dict(), path)
    with pytest.raises(ValueError, match="do not match the tower config"):
        CFEncoder(context_dim=8, vision_cfg=TINY_VIT, pretrained=str(path))


def test_schema_model_names_are_refused():
    with pytest.raises(ValueError, match="only built-in open_clip names"):
        CFEncoder(context_dim=8, model_name="hf-hub:laion/CLIP-ViT-B-16")


def test_frozen_tower_has_no_grads_stays_in_eval_but_projection_learns():
    torch.manual_seed(0)
    enc = CFEncoder(context_dim=8, vision_cfg=TINY_RESNET, trainable=False)
    enc.train()
    assert not enc.tower.training and enc.training
    assert all(not p.requires_grad for p in enc.tower.parameters())
    enc(torch.rand(2, 3, 64, 64) * 2 - 1).square().mean().backward()
    assert enc.proj.weight.grad is not None and enc.proj.weight.grad.abs().sum() > 0
    # unfreezing later works because the forward is never wrapped in no_grad
    enc.tower.requires_grad_(True)
    enc(torch.rand(2, 3, 64, 64) * 2 - 1).square().mean().backward()
    assert enc.tower.conv1.weight.grad.abs().sum() > 0


def test_builtin_model_names_build_random_towers_without_downloading():
    rn50 = CFEncoder(context_dim=8, model_name="RN50")  # HF_HUB_OFFLINE=1: a download attempt would fail
    assert rn50.num_tokens == (224 // 32) ** 2 and rn50.proj.in_features == 64 * 32
    vit = CFEncoder(context_dim=768, model_name="ViT-B-16")
    assert vit.num_tokens == (224 // 16) ** 2 and vit.proj.in_features == 768
