"""Inference writes only into its own output folder and removes only what an earlier inference run wrote there:
a folder of the user's photos with a foreign index.csv keeps every byte, overlapping --input/--out is refused,
case ids cannot leave the folder or collide by case, and an unwritable --out is named before any work."""
import subprocess

import numpy as np
import pytest
from PIL import Image

from eyeoct.data.errors import DataError
from eyeoct.inference.inputs import collect_inputs
from eyeoct.inference.layout import MARKER_NAME
from eyeoct.inference.runner import InferenceOptions, cf_preparer, run_inference
from ldm.util.files import OutputFolderError
from script_helpers import script_command, script_env
from stand_ins import StandInModel

CF_SIZE = 32


def photos(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / name, format="PNG")
    return folder


def run(inputs, out, overwrite=False):
    options = InferenceOptions(steps=2, ext="png", size=(16, 12), progress=False)
    return run_inference(StandInModel(), cf_preparer(CF_SIZE), collect_inputs(inputs), out, options, overwrite,
                         inputs)


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_of_a_folder_of_user_photos_with_a_foreign_index_keeps_every_byte(tmp_path):
    user = photos(tmp_path / "my_photos", ["eye1.png", "eye2.png"])
    (user / "index.csv").write_text("path,label\neye1.png,healthy\neye2.png,amd\n")
    (user / "skipped.txt").write_text("my notes\n")
    (user / "submission.zip").write_bytes(b"my zip")
    before = snapshot(user)
    inputs = photos(tmp_path / "inputs", ["a.png"])
    with pytest.raises(OutputFolderError, match=rf"{user} holds files that no eyeoct infer run wrote"):
        run(inputs, user, overwrite=True)
    assert snapshot(user) == before


def test_overwrite_removes_only_the_previous_runs_listed_files(tmp_path):
    inputs = photos(tmp_path / "inputs", ["a.png", "b.png"])
    out = tmp_path / "out"
    run(inputs, out)
    assert (out / MARKER_NAME).is_file() and (out / "b" / "b_5.png").is_file()
    (out / "notes.txt").write_text("mine")
    (out / "a" / "a_mine.txt").write_text("mine too")
    (inputs / "b.png").unlink()
    run(inputs, out, overwrite=True)
    assert not (out / "b").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "a" / "a_mine.txt").read_text() == "mine too"
    assert sorted(p.name for p in (out / "a").iterdir()) == ["a_0.png", "a_1.png", "a_2.png", "a_3.png", "a_4.png",
                                                             "a_5.png", "a_mine.txt"]


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_out_overlapping_the_input_is_refused_before_anything_is_written(tmp_path, where):
    inputs = photos(tmp_path / "inputs", ["a.png"])
    out = {"same": inputs, "inside": inputs / "predictions", "containing": tmp_path}[where]
    before = snapshot(tmp_path)
    with pytest.raises(OutputFolderError, match="overlap"):
        run(inputs, out)
    assert snapshot(tmp_path) == before and not (inputs / "predictions").exists()


@pytest.mark.parametrize("names, message", [
    (["...png"], r"case id '\.\.' is empty, '\.' or '\.\.'"),
    (["A.png", "a.png"], r"case ids 'A' and 'a' differ only in case"),
    (["tab\t.png", "ok.png"], r"control character"),
])
def test_case_ids_that_would_leave_or_collide_are_refused_naming_the_files(tmp_path, names, message):
    inputs = photos(tmp_path / "inputs", names)
    # a folder skips hidden files such as '...png'; named on its own, the file is read
    with pytest.raises(DataError, match=message):
        collect_inputs(inputs / names[0] if len(names) == 1 else inputs)
    assert not (tmp_path / "inputs" / ".." / "_0.png").exists()


def test_aptos_rows_and_folder_cases_get_the_same_case_id_check(tmp_path):
    from eyeoct.data.folder import load_folder_cases

    root = tmp_path / "cases"
    for name in ("Eye1", "eye1"):
        photos(root / name, ["cf.png", *(f"oct_{k}.png" for k in range(6))])
    with pytest.raises(DataError, match=r"case ids 'Eye1' and 'eye1' differ only in case"):
        load_folder_cases(root)


@pytest.mark.parametrize("out", ["/sys/eyeoct-cannot-write-here", "{tmp}/a_file/predictions"])
def test_an_unwritable_out_is_one_line_naming_it_before_the_model_loads(tmp_path, out):
    inputs = photos(tmp_path / "inputs", ["a.png"])
    (tmp_path / "a_file").write_text("not a folder")
    out = out.format(tmp=tmp_path)
    # the model files do not exist: the output check must come first
    result = subprocess.run(script_command("infer", "--run", str(tmp_path / "no_run"), "--input", str(inputs),
                                           "--out", out), capture_output=True, text=True, env=script_env(),
                            timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"output folder {out} is not writable" in lines[0]
