"""Run a training script as a 2-process CPU DDP (gloo) job in a clean environment."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from script_helpers import script_env


def run_two_process_ddp(script: Path, config: Path, root: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    """`script --config config run.root=root` on 2 CPU processes; launcher variables of an outer job removed."""
    command = [sys.executable, str(script), "--config", str(config), f"run.root={root}", "trainer.accelerator=cpu",
               "trainer.devices=2", "trainer.strategy=ddp", *overrides]
    return subprocess.run(command, cwd=root, env=script_env(), capture_output=True, text=True, timeout=300)
