"""Building objects from `target:`/`params:` config blocks, with an explicit registry of buildable classes.

A config is data and never runs code. `instantiate_from_config` builds a target only when it passes
`check_target`, which looks at the name before anything is imported:

- a class defined in one of the project's own packages (`ldm`, and those that packages building on it
  register for themselves with `allow_target_prefix` when imported: `cldm`, `eyeoct`); the imported object
  must be a class whose `__module__` lies in that package, so a function or a re-exported foreign name
  (`eyeoct.x.os`, a helper function) is refused;
- or one of the few named outside classes in `EXTERNAL_TARGETS` (plus those registered with
  `register_target`).

Anything else (`torch.hub.load`, `torch.load`, `os.system`, any function) is an error naming the target and
the config files it came from; `check_config_targets` applies the same check to every nested block of a
whole config before anything is built.

Config blocks that are not targets themselves (a model's architecture, its ControlNet settings) are read
into frozen dataclasses with `validated`: an unknown key is an error naming it and the allowed keys, a
former key name (`FORMER_NAMES`) one naming the key to use instead.
"""
from __future__ import annotations

import dataclasses
import logging
import importlib
import inspect
from typing import Any, Iterable, Mapping, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

SOURCES_KEY = "config_files"  # where a loaded config lists the files it was merged from
_allowed_prefixes: list[str] = ["ldm."]
# The outside classes a config may name: Lightning's loggers (a `loggers:` block). Nothing else from torch or
# Lightning: any of their callables could load a pickle or run a hub file.
EXTERNAL_TARGETS: set[str] = {
    "pytorch_lightning.loggers.TensorBoardLogger",
    "pytorch_lightning.loggers.CSVLogger",
}
# Keys renamed so that one thing has one name everywhere: former name -> the key to use instead.
FORMER_NAMES = {
    "norm_groups": "num_groups",
    "betas": "adam_betas",
    "lpips_backbone": "perceptual (a target/params block; its LPIPS takes backbone_weights)",
    "lpips_linear": "perceptual (a target/params block; its LPIPS takes linear_weights)",
    "lpips_net": "perceptual (a target/params block; its LPIPS takes net)",
}
# The renames a model saved before them still carries in its stored config (exports, checkpoints): loading such a
# model renames them (`upgrade_stored_spec`) instead of refusing a file the user cannot easily edit.
STORED_RENAMES = {"norm_groups": "num_groups"}
T = TypeVar("T")
logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file, key, override or target that cannot be used as given."""


def allow_target_prefix(prefix: str) -> None:
    """Let config targets under package `prefix` (e.g. ``"cldm."``) be instantiated."""
    if not prefix.endswith("."):
        raise ValueError(f"a target prefix names a package and ends with '.', got {prefix!r}")
    if prefix not in _allowed_prefixes:
        _allowed_prefixes.append(prefix)


def register_target(name: str) -> None:
    """Let the outside class `name` (``"package.module.Class"``) be built from configs."""
    EXTERNAL_TARGETS.add(name)


def allowed_target_prefixes() -> tuple[str, ...]:
    """The project packages whose own classes a config may name, in the order they were allowed."""
    return tuple(_allowed_prefixes)


def _sources(cfg: Any) -> str:
    if isinstance(cfg, (DictConfig, ListConfig)):
        files = OmegaConf.select(cfg._get_root(), SOURCES_KEY, default=None)
        return ", ".join(files) if files else "(no file)"
    return "(no file)"


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


def _refuse(target: Any, where: str, why: str) -> ConfigError:
    return ConfigError(f"config target {target!r} in {where} is refused: {why}")


def check_target(target: Any, where: str = "(no file)") -> None:
    """Raise `ConfigError` unless the name `target` may be built at all (nothing is imported)."""
    if not isinstance(target, str) or not target or not all(part.isidentifier() for part in target.split(".")):
        raise _refuse(target, where, "a target is a dotted class name such as ldm.models.autoencoder.AutoencoderKL")
    if target in EXTERNAL_TARGETS or target.startswith(allowed_target_prefixes()):
        return
    raise _refuse(target, where, f"configs build only classes of the packages {', '.join(allowed_target_prefixes())} "
                                 f"and the listed classes {sorted(EXTERNAL_TARGETS)}")


def get_obj_from_str(target: str, where: str = "(no file)") -> type:
    """The class named `target`, after `check_target`; refuses anything that is not a class of the project's
    own packages (or a listed outside class)."""
    check_target(target, where)
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"config target {target!r} in {where}: cannot import module {module_name!r}: {err}") from err
    if not hasattr(module, attr):
        raise ConfigError(f"config target {target!r} in {where}: module {module_name!r} has no attribute {attr!r}")
    obj = getattr(module, attr)
    if not inspect.isclass(obj):
        raise _refuse(target, where, f"it is a {type(obj).__name__}, not a class")
    if target not in EXTERNAL_TARGETS and not f"{obj.__module__}.".startswith(allowed_target_prefixes()):
        raise _refuse(target, where, f"it is {obj.__module__}.{obj.__qualname__}, a class from outside the project")
    return obj


def config_targets(node: Any) -> dict[str, Any]:
    """Every `target:` value at any depth of the config `node`, by its dotted path (``model.params.target``)."""
    found: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else str(key)
                if key == "target":
                    found[child_path] = child
                else:
                    walk(child, child_path)
        elif isinstance(value, (list, tuple)):
            for i, child in enumerate(value):
                walk(child, f"{path}[{i}]")

    walk(OmegaConf.to_container(node, resolve=False) if isinstance(node, (DictConfig, ListConfig)) else node, "")
    return found


def check_config_targets(node: Any, where: str | None = None) -> None:
    """`check_target` for every `target:` at any depth of the config `node`, listing every refused one."""
    where = where or _sources(node)
    refused = []
    for path, target in config_targets(node).items():
        try:
            check_target(target, where)
        except ConfigError:
            refused.append(f"{path}: {target!r}")
    if refused:
        raise ConfigError(f"{where}: config targets refused ({'; '.join(refused)}): configs build only classes of "
                          f"the packages {', '.join(allowed_target_prefixes())} and the listed classes "
                          f"{sorted(EXTERNAL_TARGETS)}")


def check_stored_targets(spec: Any, expected: Mapping[str, str], where: str) -> None:
    """Refuse a stored model spec (an export's YAML, a checkpoint's copy) unless its targets are exactly
    `expected` (dotted path -> target): a file accepts only the targets it was written with."""
    found = config_targets(spec)
    wrong = [f"{path}: {target!r}" for path, target in found.items() if expected.get(path) != target]
    if wrong:
        raise ConfigError(f"{where}: refused target(s) {'; '.join(wrong)}; this file may only name "
                          + ", ".join(f"{path}: {target}" for path, target in expected.items()))


def to_container(node: Any) -> Any:
    """Plain Python containers (dicts and lists) from an OmegaConf node; other values pass through."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def check_keys(where: str, block: Any, allowed: Iterable[str]) -> None:
    """Raise `ConfigError` unless `block` is a mapping whose keys are all in `allowed` (a former key name
    is reported with the key that replaced it)."""
    allowed = list(allowed)
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where} must be a mapping of {allowed}, got {block!r}")
    former = sorted(key for key in block if key not in allowed and key in FORMER_NAMES)
    if former:
        raise ConfigError(f"{where}: " + "; ".join(f"'{key}' is a former name, use {FORMER_NAMES[key]} instead"
                                                   for key in former))
    unknown = sorted(set(block) - set(allowed))
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {allowed}")


def validated(cls: type[T], block: Mapping[str, Any] | None, where: str) -> T:
    """The dataclass `cls` built from the config block `block` (None: every default), after `check_keys`;
    a missing required key is an error naming it."""
    block = to_container(block) if block is not None else {}
    fields = [f for f in dataclasses.fields(cls) if f.init]
    check_keys(where, block, [f.name for f in fields])
    missing = [f.name for f in fields if f.name not in block and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where} needs the key(s) {missing}")
    return cls(**block)


def check_params(where: str, factory: Any, params: Mapping[str, Any]) -> None:
    """`check_keys` of the keyword arguments `params` for `factory`, when its signature lists them all
    (no ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except ValueError:  # some builtins have no inspectable signature; the call itself checks
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    check_keys(where, params, [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL])


def instantiate_from_config(node: Mapping | DictConfig, **extra_kwargs: Any) -> Any:
    """Build `target(**params, **extra_kwargs)` from a `target:`/`params:` block."""
    if node is None or "target" not in node:
        shown = OmegaConf.to_yaml(node) if isinstance(node, DictConfig) else repr(node)
        raise ConfigError(f"expected a block with a 'target:' key, got:\n{shown}")
    factory = get_obj_from_str(node["target"], _sources(node))
    params = to_container(node.get("params", None)) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"'params' of target {node['target']!r} must be a mapping, got {params!r}")
    check_params(f"params of {node['target']!r}", factory, params)
    try:
        inspect.signature(factory).bind(**params, **extra_kwargs)
    except TypeError as err:
        raise ConfigError(f"cannot build {node['target']!r} with params {sorted(params)}: {err}") from err
    except ValueError:  # some builtins have no inspectable signature; let the call itself check
        pass
    return factory(**params, **extra_kwargs)


def upgrade_stored_spec(spec: Any, where: str) -> Any:
    """A copy of the stored model config `spec` (nested dicts/lists, as read from an export's YAML or a
    checkpoint) with the keys of `STORED_RENAMES` renamed at any depth; logs once what was renamed."""
    renamed: list[str] = []

    def upgrade(node: Any) -> Any:
        if isinstance(node, Mapping):
            out = {}
            for key, value in node.items():
                new_key = STORED_RENAMES.get(key, key)
                if new_key != key:
                    if new_key in node:
                        raise ConfigError(f"{where}: has both '{key}' and '{new_key}'")
                    renamed.append(key)
                out[new_key] = upgrade(value)
            return out
        if isinstance(node, list):
            return [upgrade(value) for value in node]
        return node

    upgraded = upgrade(spec)
    if renamed:
        logger.warning("%s was written by an earlier version: renamed %s", where,
                       ", ".join(f"{k} -> {STORED_RENAMES[k]}" for k in sorted(set(renamed))))
    return upgraded
