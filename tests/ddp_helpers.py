"""Run a training script as a 2-process CPU DDP (gloo) job in a clean environment."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ae_helpers import REPO_ROOT


def run_two_process_ddp(script: Path, config: Path, root: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    """`script --config config run.root=root` on 2 CPU processes; launcher variables of an outer job removed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_PORT"):
        env.pop(var, None)
    command = [sys.executable, str(script), "--config", str(config), f"run.root={root}", "trainer.accelerator=cpu",
               "trainer.devices=2", "trainer.strategy=ddp", *overrides]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
