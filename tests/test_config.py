"""Config merging, overrides, includes, the target allow-list and missing-key errors."""
import textwrap

import pytest
import torch
from omegaconf import OmegaConf

from eyeoct.config import ConfigError, instantiate_from_config, load_config, require, save_config


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_files_merge_in_order_then_overrides(tmp_path):
    a = write(tmp_path / "a.yaml", """
        model: {lr: 0.1, depth: 2}
        trainer: {max_steps: 10}
    """)
    b = write(tmp_path / "b.yaml", """
        model: {lr: 0.01}
    """)
    cfg = load_config([a, b], ["model.depth=5", "trainer.precision=bf16-mixed", "new.key=[1,2]"])
    assert cfg.model.lr == 0.01
    assert cfg.model.depth == 5
    assert cfg.trainer.max_steps == 10
    assert cfg.trainer.precision == "bf16-mixed"
    assert list(cfg.new.key) == [1, 2]
    assert cfg.config_files == [str(a), str(b)]
    reversed_cfg = load_config([b, a])
    assert reversed_cfg.model.lr == 0.1


def test_includes_are_merged_before_the_including_file(tmp_path):
    (tmp_path / "data").mkdir()
    write(tmp_path / "data" / "d.yaml", "data: {size: 64, batch: 4}\n")
    main = write(tmp_path / "main.yaml", """
        includes: [data/d.yaml]
        data: {batch: 8}
    """)
    cfg = load_config([main])
    assert cfg.data.size == 64 and cfg.data.batch == 8
    assert "includes" not in cfg


def test_include_cycle_and_missing_file_are_named(tmp_path):
    write(tmp_path / "x.yaml", "includes: [y.yaml]\n")
    write(tmp_path / "y.yaml", "includes: [x.yaml]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config([tmp_path / "x.yaml"])
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config([tmp_path / "nope.yaml"])


def test_unparsable_yaml_names_the_file(tmp_path):
    bad = write(tmp_path / "bad.yaml", "model: {lr: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config([bad])


def test_bad_override_is_named(tmp_path):
    a = write(tmp_path / "a.yaml", "x: 1\n")
    with pytest.raises(ConfigError, match="'model.lr'"):
        load_config([a], ["model.lr"])


def test_overrides_reach_list_items_by_index_and_keep_interpolations(tmp_path):
    a = write(tmp_path / "a.yaml", """
        size: 64
        callbacks:
          - {target: eyeoct.a.B, params: {every: 10, size: "${size}"}}
          - {target: eyeoct.a.C}
    """)
    cfg = load_config([a], ["callbacks.0.params.every=2", "callbacks.1.params={k: 3}", "size=${other}", "other=5"])
    assert cfg.callbacks[0].params.every == 2 and cfg.callbacks[0].target == "eyeoct.a.B"
    assert cfg.callbacks[1].params.k == 3
    assert cfg.callbacks[0].params.size == 5  # resolved at access time, after every override
    with pytest.raises(ConfigError, match=r"callbacks.5.params.every=1"):
        load_config([a], ["callbacks.5.params.every=1"])


def test_missing_required_key_names_key_and_files(tmp_path):
    a = write(tmp_path / "a.yaml", "model:\n  first_stage: ???\n")
    cfg = load_config([a])
    with pytest.raises(ConfigError) as err:
        require(cfg, "model.first_stage")
    assert "model.first_stage" in str(err.value) and str(a) in str(err.value)
    with pytest.raises(ConfigError, match=r"'trainer.max_steps' is missing in .*a.yaml"):
        require(cfg, "trainer.max_steps")


def test_instantiate_allowed_target_with_params():
    layer = instantiate_from_config(OmegaConf.create({"target": "torch.nn.Linear", "params": {"in_features": 3, "out_features": 2}}))
    assert isinstance(layer, torch.nn.Linear) and tuple(layer.weight.shape) == (2, 3)
    layer = instantiate_from_config({"target": "torch.nn.Linear", "params": {"in_features": 3}}, out_features=5)
    assert layer.out_features == 5


@pytest.mark.parametrize("target", ["os.system", "subprocess.Popen", "builtins.eval", "torchvision.models.resnet50"])
def test_targets_outside_the_allow_list_are_rejected(target):
    with pytest.raises(ConfigError, match=target.replace(".", r"\.")):
        instantiate_from_config({"target": target, "params": {}})


def test_wrong_params_and_unknown_attribute_are_named():
    with pytest.raises(ConfigError, match="torch.nn.Linear"):
        instantiate_from_config({"target": "torch.nn.Linear", "params": {"in_features": 3, "bogus": 1}})
    with pytest.raises(ConfigError, match="NoSuchLayer"):
        instantiate_from_config({"target": "torch.nn.NoSuchLayer"})
    with pytest.raises(ConfigError, match="target"):
        instantiate_from_config({"params": {}})


def test_saved_config_round_trips_and_is_never_overwritten(tmp_path):
    a = write(tmp_path / "a.yaml", "model: {lr: 0.5, layers: [1, 2]}\nref: ${model.lr}\n")
    cfg = load_config([a], ["model.lr=0.25"])
    out = save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config([out])
    assert again.model.lr == 0.25 and again.ref == 0.25 and list(again.model.layers) == [1, 2]
    with pytest.raises(ConfigError, match="overwrite"):
        save_config(cfg, out)
