"""Config blocks: one name per thing (a former name is an error naming its replacement), unknown keys named
with the allowed ones, and no former name left in the shipped configs."""
import pytest
from omegaconf import OmegaConf

from cldm.cf_encoder import CFEncoder
from eyeoct.config import load_config
from ldm.models.autoencoder import AutoencoderKL
from ldm.modules.losses import AutoencoderLoss
from ldm.modules.unet import UNetModel
from ldm.util.config import FORMER_NAMES, ConfigError, instantiate_from_config

REPO_CONFIGS = "configs"
DDCONFIG = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, z_channels=4, num_groups=4)
UNET = dict(in_channels=4, out_channels=4, model_channels=16, channel_mult=[1, 2], attention_resolutions=[2],
            num_head_channels=8, num_groups=8, context_dim=24)
AE_TARGET = "ldm.models.autoencoder.AutoencoderKL"


def test_former_names_name_the_key_to_use_instead():
    with pytest.raises(ConfigError, match="ddconfig: 'norm_groups' is a former name, use num_groups instead"):
        AutoencoderKL(ddconfig={**{k: v for k, v in DDCONFIG.items() if k != "num_groups"}, "norm_groups": 4})
    with pytest.raises(ConfigError, match="'betas' is a former name, use adam_betas instead"):
        instantiate_from_config({"target": AE_TARGET, "params": {"ddconfig": DDCONFIG, "betas": [0.5, 0.9]}})
    with pytest.raises(ConfigError, match="discriminator: 'norm_groups' is a former name, use num_groups"):
        AutoencoderLoss(discriminator={"start_step": 0, "norm_groups": 4})
    with pytest.raises(ConfigError, match="'lpips_backbone' is a former name, use perceptual .*backbone_weights"):
        instantiate_from_config({"target": "ldm.modules.losses.AutoencoderLoss",
                                 "params": {"perceptual_weight": 0.1, "lpips_backbone": "vgg16.pth"}})
    with pytest.raises(ConfigError, match="unet_config: 'norm_groups' is a former name, use num_groups"):
        UNetModel(**{**UNET, "norm_groups": 8})


def test_unknown_keys_are_named_with_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unet_config has unknown keys \['heads'\]; allowed: .*'num_groups'"):
        UNetModel(**UNET, heads=4)
    with pytest.raises(ConfigError, match=r"ddconfig has unknown keys \['width'\]; allowed: \['ch', 'ch_mult'"):
        AutoencoderKL(ddconfig={**DDCONFIG, "width": 8})
    with pytest.raises(ConfigError, match=r"discriminator has unknown keys \['depth'\]; allowed: .*'num_layers'"):
        AutoencoderLoss(discriminator={"start_step": 0, "depth": 2})
    with pytest.raises(ConfigError, match=r"discriminator needs the key\(s\) \['start_step'\]"):
        AutoencoderLoss(discriminator={"weight": 0.5})
    with pytest.raises(ConfigError, match=r"vision_cfg has unknown keys \['heads'\]; allowed: .*'head_width'"):
        CFEncoder(context_dim=8, vision_cfg={"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "heads": 2})
    with pytest.raises(ConfigError, match=r"params of 'torch.nn.Linear' has unknown keys \['bogus'\]; "
                                          r"allowed: \['in_features', 'out_features', 'bias', 'device', 'dtype'\]"):
        instantiate_from_config({"target": "torch.nn.Linear", "params": {"in_features": 3, "bogus": 1}})


@pytest.mark.parametrize("block, message", [
    ("model.params.cf_encoder_config.tower=RN50", r"cf_encoder_config has unknown keys \['tower'\]; allowed: "
                                                  r"\['model_name', 'vision_cfg'"),
    ("model.params.schedule.steps=10", r"model.params.schedule has unknown keys \['steps'\]; allowed: \['kind', "),
    ("model.params.controlnet.locked=true", r"model.params.controlnet has unknown keys \['locked'\]; allowed: "
                                            r"\['enabled', 'sd_locked'"),
])
def test_controlldm_blocks_name_unknown_keys(repo_root, block, message):
    cfg = load_config([repo_root / "configs/dm/tiny_test.yaml"], [block])
    with pytest.raises(ConfigError, match=message):
        instantiate_from_config(cfg.model)


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


def test_shipped_configs_use_no_former_names(repo_root):
    files = sorted((repo_root / REPO_CONFIGS).rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        found = set(_keys(OmegaConf.to_container(OmegaConf.load(path)))) & set(FORMER_NAMES)
        assert not found, f"{path} uses former key names {sorted(found)}"
