"""`ldm.util.checkpoints.read_state_dict`: the one reader of local weight files."""
import pytest
import torch
from safetensors.torch import save_file

from ldm.util.checkpoints import read_state_dict

TENSORS = {"a.weight": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2])}


@pytest.mark.parametrize("name, wrap", [("w.safetensors", False), ("w.pt", False), ("w.ckpt", True)])
def test_reads_safetensors_and_torch_files_and_unwraps_state_dict(tmp_path, name, wrap):
    path = tmp_path / name
    if path.suffix == ".safetensors":
        save_file(TENSORS, str(path))
    else:
        torch.save({"state_dict": TENSORS, "epoch": 3} if wrap else TENSORS, path)
    state = read_state_dict(path, "test weights")
    assert sorted(state) == ["a.weight", "b"]
    assert torch.equal(state["a.weight"], TENSORS["a.weight"]) and torch.equal(state["b"], TENSORS["b"])


def test_missing_file_names_the_file_and_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt.*Expected the UNet of SD 1\.5"):
        read_state_dict(tmp_path / "nope.pt", "the UNet of SD 1.5")


class Pickled:
    pass


def test_pickled_objects_and_non_dicts_are_refused_with_the_file_named(tmp_path):
    pickled = tmp_path / "object.pt"
    torch.save({"model": Pickled()}, pickled)
    with pytest.raises(ValueError, match=r"(?s)object\.pt.*weights_only=True.*Expected a state dict of X"):
        read_state_dict(pickled, "a state dict of X")
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ValueError, match=r"list\.pt: expected a state dict .* got list"):
        read_state_dict(listed, "a state dict of X")
    garbage = tmp_path / "broken.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"broken\.safetensors"):
        read_state_dict(garbage, "a state dict of X")
