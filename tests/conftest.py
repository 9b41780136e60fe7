"""Test-wide settings: no hub access, deterministic CPU runs, the repository root on hand, and the `slow`
marker (deselected unless asked for with `-m slow`)."""
import os
import pytest
import torch

from ldm.util.config import register_target
from script_helpers import REPO_ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tiny models run faster on one thread, and the suite stays fast when other processes share the cores.
torch.set_num_threads(1)

# Outside classes the tests build from configs (no shipped config names them, so the registry does not list them).
for name in ("torch.nn.Linear", "pytorch_lightning.demos.boring_classes.BoringModel",
             "pytorch_lightning.demos.boring_classes.BoringDataModule"):
    register_target(name)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long check kept out of the default run (`-m slow` runs it)")


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with `python -m pytest tests -m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def repo_root():
    return REPO_ROOT
