"""Config loading: YAML files merged in order, `key.sub=value` overrides, and safe instantiation.

A config is an OmegaConf tree. Blocks with `target:` and optional `params:` are built by
`ldm.util.config.instantiate_from_config` (re-exported here with `require` and `ConfigError`), which builds
only classes from an explicit registry (the classes of `ldm`, `cldm` and `eyeoct`, and a listed few outside
ones); `load_config` checks every target of the merged config before anything is built.
A YAML file may list other files under `includes:` (paths relative to itself); they are merged
before the file's own keys, so `configs/ae/phantom_demo.yaml` can pull in its data config.

A config is named by a file path or by a packaged name (see `resolve_config_path`): the repository's
`configs/` folder ships inside the installed package as `eyeoct/configs/`, so `--config dm/phantom_demo`
works from any folder after `pip install .`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ldm.util.config import (SOURCES_KEY, ConfigError, check_config_targets, get_obj_from_str,
                              instantiate_from_config, require, to_container)
from ldm.util.files import atomic_write

__all__ = ["SOURCES_KEY", "ConfigError", "get_obj_from_str", "instantiate_from_config", "require", "to_container",
           "packaged_config_root", "packaged_config_names", "resolve_config_path", "apply_overrides", "load_config",
           "save_config"]

CONFIG_SUFFIX = ".yaml"
_PACKAGE_DIR = Path(__file__).resolve().parent


def packaged_config_root() -> Path:
    """The folder of the shipped configs: `eyeoct/configs/` in an installed wheel (setup.py maps the
    repository's top-level `configs/` there), the repository's `configs/` when running from a checkout."""
    installed = _PACKAGE_DIR / "configs"
    return installed if installed.is_dir() else _PACKAGE_DIR.parent / "configs"


def packaged_config_names() -> list[str]:
    """Names of the shipped configs, such as `dm/phantom_demo` (path below the root, no suffix)."""
    root = packaged_config_root()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob(f"*{CONFIG_SUFFIX}"))


def resolve_config_path(name: str | Path) -> Path:
    """The YAML file meant by `name`: an existing file wins; otherwise a packaged config.

    A packaged name may carry a leading `configs/` and the `.yaml` suffix, so `dm/phantom_demo`,
    `dm/phantom_demo.yaml` and `configs/dm/phantom_demo.yaml` all name the same shipped file.
    """
    path = Path(name)
    if path.is_file():
        return path
    parts = path.parts[1:] if path.parts[:1] == ("configs",) else path.parts
    if parts and not path.is_absolute():
        candidate = packaged_config_root().joinpath(*parts)
        candidate = candidate if candidate.suffix == CONFIG_SUFFIX else candidate.with_name(candidate.name + CONFIG_SUFFIX)
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config not found: {name} is neither a file nor a packaged config; packaged configs: "
                      f"{', '.join(packaged_config_names())}")


def _load_yaml(path: Path, chain: tuple[Path, ...]) -> DictConfig:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in chain + (path,))
        raise ConfigError(f"config includes form a cycle: {cycle}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        node = OmegaConf.load(path)
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot parse config file {path}: {err}") from err
    if node is None:
        node = OmegaConf.create({})
    if not isinstance(node, DictConfig):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, got a list")
    includes = node.pop("includes", None) or []
    if isinstance(includes, str):
        includes = [includes]
    parts = [_load_yaml(path.parent / str(inc), chain + (path,)) for inc in includes]
    return OmegaConf.merge(*parts, node) if parts else node


def apply_overrides(cfg: DictConfig, overrides: Iterable[str]) -> None:
    """Apply `key.sub=value` strings in order; values are parsed as YAML (scalars, [lists], {maps}),
    and a numeric key part indexes a list (`callbacks.0.params.every_n_steps=2`)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = OmegaConf.to_container(OmegaConf.from_dotlist([f"value={raw}"]), resolve=False)["value"]
            OmegaConf.update(cfg, key.strip(), value, merge=True)
        except (OmegaConfBaseException, TypeError, ValueError, IndexError) as err:
            raise ConfigError(f"cannot apply override {item!r}: {err}") from err


def load_config(paths: Sequence[str | Path], overrides: Iterable[str] = ()) -> DictConfig:
    """Merge the YAML files (paths or packaged names, see `resolve_config_path`) in order, then apply the
    overrides; records the files under `config_files`."""
    if not paths:
        raise ConfigError("no config file given: pass at least one --config FILE")
    files = [resolve_config_path(p) for p in paths]
    cfg = OmegaConf.merge(*[_load_yaml(f, ()) for f in files])
    apply_overrides(cfg, overrides)
    cfg[SOURCES_KEY] = [str(f) for f in files]
    check_config_targets(cfg, ", ".join(cfg[SOURCES_KEY]))
    return cfg


def save_config(cfg: DictConfig, path: str | Path) -> Path:
    """Write the resolved config to `path` (refusing to overwrite an existing file)."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"refusing to overwrite existing config file {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(cfg, resolve=True).encode()
    return atomic_write(path, lambda handle: handle.write(text))
