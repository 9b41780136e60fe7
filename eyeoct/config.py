"""Config loading: YAML files merged in order, `key.sub=value` overrides, and safe instantiation.

A config is an OmegaConf tree. Blocks with `target:` and optional `params:` are built by
`instantiate_from_config`, which only imports targets under `ALLOWED_TARGET_PREFIXES`.
A YAML file may list other files under `includes:` (paths relative to itself); they are merged
before the file's own keys, so `configs/ae/phantom_demo.yaml` can pull in its data config.

A config is named by a file path or by a packaged name (see `resolve_config_path`): the repository's
`configs/` folder ships inside the installed package as `eyeoct/configs/`, so `--config dm/phantom_demo`
works from any folder after `pip install .`.
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from eyeoct.files import atomic_write

ALLOWED_TARGET_PREFIXES = ("eyeoct.", "ldm.", "cldm.", "torch.", "pytorch_lightning.")
SOURCES_KEY = "config_files"
CONFIG_SUFFIX = ".yaml"
_PACKAGE_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    """A config file, key, override or target that cannot be used as given."""


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
    return cfg


def _sources(cfg: DictConfig) -> str:
    files = OmegaConf.select(cfg, SOURCES_KEY, default=None)
    return ", ".join(files) if files else "(no file)"


def require(cfg: DictConfig, key: str) -> Any:
    """Return `cfg[key]` for a dotted key, or raise naming the key and the config files."""
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
    except OmegaConfBaseException as err:
        raise ConfigError(
            f"required config key '{key}' has no value (it is '???') in {_sources(cfg)}; "
            f"set it in a YAML file or on the command line as {key}=..."
        ) from err
    if value is None:
        raise ConfigError(
            f"required config key '{key}' is missing in {_sources(cfg)}; "
            f"set it in a YAML file or on the command line as {key}=..."
        )
    return value


def get_obj_from_str(target: str) -> Any:
    """Import `package.module.Name` after checking it against the allow-list."""
    if not isinstance(target, str) or not target.startswith(ALLOWED_TARGET_PREFIXES):
        raise ConfigError(
            f"config target {target!r} is not allowed: targets must start with one of "
            f"{', '.join(ALLOWED_TARGET_PREFIXES)}"
        )
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"config target {target!r}: cannot import module {module_name!r}: {err}") from err
    if not hasattr(module, attr):
        raise ConfigError(f"config target {target!r}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def to_container(node: Any) -> Any:
    """Plain Python containers (dicts and lists) from an OmegaConf node; other values pass through."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def instantiate_from_config(node: Mapping | DictConfig, **extra_kwargs: Any) -> Any:
    """Build `target(**params, **extra_kwargs)` from a `target:`/`params:` block."""
    if node is None or "target" not in node:
        shown = OmegaConf.to_yaml(node) if isinstance(node, DictConfig) else repr(node)
        raise ConfigError(f"expected a block with a 'target:' key, got:\n{shown}")
    factory = get_obj_from_str(node["target"])
    params = to_container(node.get("params", None)) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"'params' of target {node['target']!r} must be a mapping, got {params!r}")
    try:
        inspect.signature(factory).bind(**params, **extra_kwargs)
    except TypeError as err:
        raise ConfigError(f"cannot build {node['target']!r} with params {sorted(params)}: {err}") from err
    except ValueError:  # some builtins have no inspectable signature; let the call itself check
        pass
    return factory(**params, **extra_kwargs)


def save_config(cfg: DictConfig, path: str | Path) -> Path:
    """Write the resolved config to `path` (refusing to overwrite an existing file)."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"refusing to overwrite existing config file {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(cfg, resolve=True).encode()
    return atomic_write(path, lambda handle: handle.write(text))
