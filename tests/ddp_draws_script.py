"""scripts/train_dm.py with spies, for tests/test_dm_ddp.py: each rank records the timesteps and noise of its
first training step and its final weights (EMA included) under $EYEOCT_TEST_DRAWS. Lightning relaunches
this file for the other rank, so both ranks carry the spies."""
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_helpers import script_main  # noqa: E402

from cldm.cldm import ControlLDM  # noqa: E402
from ldm.models.diffusion.schedule import NoiseSchedule  # noqa: E402

OUT = Path(os.environ["EYEOCT_TEST_DRAWS"])
first_draw: dict[str, torch.Tensor] = {}
q_sample = NoiseSchedule.q_sample


def recording_q_sample(self, x0, t, noise):
    if torch.is_grad_enabled() and not first_draw:  # the first training step (validation runs without grad)
        first_draw.update(timesteps=t.clone(), noise=noise.clone())
    return q_sample(self, x0, t, noise)


def record_on_train_end(self):
    state = {k: v.clone() for k, v in self.state_dict().items() if isinstance(v, torch.Tensor)}
    torch.save({"first_draw": first_draw, "weights": state}, OUT / f"rank{self.global_rank}.pt")


NoiseSchedule.q_sample = recording_q_sample
ControlLDM.on_train_end = record_on_train_end

if __name__ == "__main__":
    script_main("train_dm")(sys.argv[1:])
