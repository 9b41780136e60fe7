"""Inference plumbing with a small stand-in model: layout, sizes, seeds, overwrite, bad inputs, K>1, zip."""
import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eyeoct.data.errors import DataError, ImageReadError
from eyeoct.inference.inputs import collect_inputs
from eyeoct.inference.layout import OutputExistsError
from eyeoct.inference.runner import InferenceOptions, cf_preparer, run_inference
from eyeoct.inference.seeding import sample_seed
from eyeoct.inference.statistics import STD_TO_UINT8, std_map
from eyeoct.volume_io import read_volume
from stand_ins import StandInModel

CF_SIZE = 32


def save_rgb(path: Path, height: int, width: int, seed: int, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return path


@pytest.fixture
def cf_folder(tmp_path):
    folder = tmp_path / "cf"
    folder.mkdir()
    save_rgb(folder / "011574-64L.jpg", 40, 60, 0)
    save_rgb(folder / "b_gray.png", 50, 30, 1, mode="L")  # grayscale, portrait
    save_rgb(folder / "c_rgba.png", 33, 33, 2, mode="RGBA")
    save_rgb(folder / "d.bmp", 20, 70, 3)
    (folder / "notes.txt").write_text("not an image")
    return folder


def run(folder, out, **kwargs):
    torch.manual_seed(0)
    overwrite = kwargs.pop("overwrite", False)
    options = InferenceOptions(steps=3, seed=kwargs.pop("seed", 7), size=kwargs.pop("size", (28, 20)), **kwargs)
    return run_inference(StandInModel(), cf_preparer(CF_SIZE), collect_inputs(folder), out, options, overwrite)


def read_index(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_layout_sizes_count_and_index(cf_folder, tmp_path):
    out = tmp_path / "out"
    result = run(cf_folder, out, ext="png")
    cases = ["011574-64L", "b_gray", "c_rgba", "d"]
    assert result.cases == cases
    for case in cases:
        assert sorted(p.name for p in (out / case).iterdir()) == [f"{case}_{k}.png" for k in range(6)]
        volume = read_volume(out / case)
        assert volume.shape == (6, 20, 28) and volume.std() > 0
        with Image.open(out / "montages" / f"{case}.png") as montage:
            assert montage.mode == "RGB" and montage.size == (324 + 4 + 3 * 224 + 2 * 4, 324)
    assert sorted(p.name for p in out.iterdir()) == sorted(cases + [".eyeoct-infer", "index.csv", "montages"])
    rows = read_index(out / "index.csv")
    assert [r["kind"] for r in rows].count("submission") == 24 and [r["kind"] for r in rows].count("montage") == 4
    assert all((out / r["path"]).is_file() for r in rows)
    first = rows[0]
    assert (first["case"], first["sample"], first["slice"], first["steps"], first["seed"]) == ("011574-64L", "0", "0", "3", "7")
    assert first["sampler"] == "dpmpp-2m"  # the default
    assert first["sample_seed"] == str(sample_seed(7, "011574-64L", 0))


def test_jpg_output_and_options_reach_the_model(cf_folder, tmp_path):
    torch.manual_seed(0)
    model = StandInModel()
    options = InferenceOptions(sampler="ddim", steps=4, eta=0.5, guidance=2.0, batch_size=3, size=(448, 320),
                               precision="bf16")
    run_inference(model, cf_preparer(CF_SIZE), collect_inputs(cf_folder), tmp_path / "out", options)
    assert [c["batch"] for c in model.calls] == [3, 1]
    assert all((c["sampler"], c["steps"], c["eta"], c["guidance_scale"], c["precision"]) == ("ddim", 4, 0.5, 2.0, "bf16")
               for c in model.calls)
    rows = read_index(tmp_path / "out" / "index.csv")
    assert {(r["sampler"], r["steps"], r["eta"], r["precision"]) for r in rows} == {("ddim", "4", "0.5", "bf16")}
    with Image.open(tmp_path / "out" / "d" / "d_5.jpg") as image:
        assert image.size == (448, 320) and image.mode == "L" and image.format == "JPEG"


def test_same_seed_same_files_and_batch_size_does_not_matter(cf_folder, tmp_path):
    run(cf_folder, tmp_path / "a", batch_size=1)
    run(cf_folder, tmp_path / "b", batch_size=3)
    run(cf_folder, tmp_path / "c", batch_size=1, seed=8)
    single = tmp_path / "single"
    single.mkdir()
    (single / "d.bmp").write_bytes((cf_folder / "d.bmp").read_bytes())
    run(single, tmp_path / "alone")
    for case in ["011574-64L", "b_gray", "c_rgba", "d"]:
        for k in range(6):
            name = f"{case}/{case}_{k}.jpg"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not np.array_equal(read_volume(tmp_path / "a" / "d"), read_volume(tmp_path / "c" / "d"))
    assert np.array_equal(read_volume(tmp_path / "a" / "d"), read_volume(tmp_path / "alone" / "d"))


def test_existing_output_is_refused_unless_overwrite(cf_folder, tmp_path):
    out = tmp_path / "out"
    run(cf_folder, out, samples_per_input=2)
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not empty.*--overwrite"):
        run(cf_folder, out)
    (cf_folder / "d.bmp").unlink()
    run(cf_folder, out, overwrite=True)
    assert not (out / "d").exists() and not (out / "samples").exists() and not (out / "uncertainty").exists()
    assert (out / "mine.txt").read_text() == "keep me"
    assert sorted(r["case"] for r in read_index(out / "index.csv") if r["kind"] == "montage") == [
        "011574-64L", "b_gray", "c_rgba"]


def test_corrupt_file_is_an_error_naming_it(cf_folder, tmp_path):
    (cf_folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        run(cf_folder, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())  # every input is read before anything is written (the folder is created empty by the writability check)


def test_skip_bad_lists_the_file(cf_folder, tmp_path):
    bad = cf_folder / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    result = run(cf_folder, tmp_path / "out", skip_bad=True, make_zip=True)
    assert [p for p, _ in result.skipped] == [bad] and "broken" not in result.cases
    assert (tmp_path / "out" / "skipped.txt").read_text().startswith(f"{bad}\t")
    skipped_rows = [r for r in read_index(tmp_path / "out" / "index.csv") if r["kind"] == "skipped"]
    assert [r["path"] for r in skipped_rows] == [str(bad)] and "cannot decode" in skipped_rows[0]["note"]
    assert not (tmp_path / "out" / "broken").exists()


@pytest.fixture
def mixed_folder(tmp_path):
    """A phantom CF photo (a fundus: ok), a grayscale B-scan-like image and a blank frame."""
    from eyeoct.data.phantom import PhantomConfig, render_case

    folder = tmp_path / "mixed"
    folder.mkdir()
    cf = render_case(0, 3, PhantomConfig(cf_size=96, oct_height=32, oct_width=32)).cf
    canvas = np.zeros((120, 200, 3), np.uint8)
    canvas[10:106, 60:156] = cf  # off centre on a wide black frame, as a camera writes it
    Image.fromarray(canvas).save(folder / "eye.png")
    rows = np.linspace(0, 255, 48, dtype=np.uint8)[:, None].repeat(64, axis=1)
    Image.fromarray(rows).save(folder / "bscan.png")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(folder / "blank.png")
    return folder


def test_every_input_gets_a_verdict_and_flagged_ones_are_still_processed(mixed_folder, tmp_path, caplog):
    result = run(mixed_folder, tmp_path / "out", progress=False)
    assert result.input_checks == {"blank": "blank", "bscan": "grayscale", "eye": "ok"}
    assert result.cases == ["blank", "bscan", "eye"] and result.skipped == []
    rows = read_index(tmp_path / "out" / "index.csv")
    assert {(r["case"], r["input_check"]) for r in rows} == {("blank", "blank"), ("bscan", "grayscale"), ("eye", "ok")}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("bscan.png does not look like a colour fundus photograph (grayscale)" in m for m in warned)
    assert not any("eye.png" in m for m in warned)


def test_strict_inputs_skips_flagged_ones_and_lists_them(mixed_folder, tmp_path):
    out = tmp_path / "out"
    result = run(mixed_folder, out, strict_inputs=True)
    assert result.cases == ["eye"]
    assert (out / "skipped.txt").read_text().splitlines() == [
        f"{mixed_folder / 'blank.png'}\tinput check: blank", f"{mixed_folder / 'bscan.png'}\tinput check: grayscale"]
    skipped = [r for r in read_index(out / "index.csv") if r["kind"] == "skipped"]
    assert [(r["case"], r["input_check"]) for r in skipped] == [("blank", "blank"), ("bscan", "grayscale")]
    assert not (out / "bscan").exists() and (out / "eye" / "eye_0.jpg").is_file()


def test_options_refuse_eta_for_the_deterministic_sampler_and_default_its_steps():
    with pytest.raises(ValueError, match="eta=0.5: the dpmpp-2m sampler is deterministic"):
        InferenceOptions(sampler="dpmpp-2m", eta=0.5)
    with pytest.raises(ValueError, match="unknown sampler 'plms'"):
        InferenceOptions(sampler="plms")
    assert InferenceOptions(sampler="dpmpp-2m").steps == 15 and InferenceOptions(sampler="ddim").steps == 50
    assert InferenceOptions(sampler="ddim", steps=20).steps == 20


def test_k_samples_write_samples_std_maps_and_mean(cf_folder, tmp_path):
    out = tmp_path / "out"
    run(cf_folder, out, samples_per_input=2, submit="mean", ext="png", size=(24, 16))  # model size: no resampling
    for case in ["011574-64L", "d"]:
        s0, s1 = (read_volume(out / "samples" / f"s{j}" / case).astype(float) for j in range(2))
        assert not np.array_equal(s0, s1)
        submitted = read_volume(out / case).astype(float)
        assert np.abs(submitted - (s0 + s1) / 2).max() <= 1  # mean of the samples, up to rounding
        stds = []
        for k in range(6):
            with Image.open(out / "uncertainty" / case / f"{case}_{k}_std.png") as image:
                assert image.size == (24, 16) and image.mode == "L"
                stds.append(np.asarray(image, dtype=float))
        # std of two samples is |a-b|/2 on [0,1] intensities, stored times 510: |a-b| in grey levels
        assert np.abs(np.stack(stds) - np.abs(s0 - s1)).max() <= 1
    rows = read_index(out / "index.csv")
    assert {r["sample"] for r in rows if r["kind"] == "submission"} == {"mean"}
    assert sum(r["kind"] == "uncertainty" for r in rows) == 24 and sum(r["kind"] == "sample" for r in rows) == 48


def test_std_map_scale():
    samples = torch.stack([torch.full((6, 2, 2), -1.0), torch.full((6, 2, 2), 1.0)])
    assert (std_map(samples) == 255).all() and STD_TO_UINT8 == 510
    assert (std_map(torch.zeros(3, 6, 2, 2)) == 0).all()
    quarter = torch.stack([torch.zeros(6, 2, 2), torch.full((6, 2, 2), 0.1)])  # intensities 0.5, 0.55
    assert (std_map(quarter) == round(0.025 * 510)).all()


def test_zip_holds_exactly_the_case_files(cf_folder, tmp_path):
    out = tmp_path / "out"
    run(cf_folder, out, make_zip=True, samples_per_input=2)
    with zipfile.ZipFile(out / "submission.zip") as archive:
        names = sorted(archive.namelist())
        assert archive.read("d/d_3.jpg") == (out / "d" / "d_3.jpg").read_bytes()
    assert names == sorted(f"{c}/{c}_{k}.jpg" for c in ["011574-64L", "b_gray", "c_rgba", "d"] for k in range(6))


def test_inputs_single_image_csv_and_errors(cf_folder, tmp_path):
    assert [i.case_id for i in collect_inputs(cf_folder / "d.bmp")] == ["d"]
    root = tmp_path / "val"
    (root / "CF").mkdir(parents=True)
    save_rgb(root / "CF" / "x1R.jpg", 20, 20, 4)
    save_rgb(root / "CF" / "x2L.jpg", 20, 20, 5)
    (root / "val.csv").write_text("PID,CF_path\n1,x2L.jpg\n2,x1R.jpg\n")
    inputs = collect_inputs(root / "val.csv")
    assert [(i.case_id, i.path) for i in inputs] == [("x2L", root / "CF" / "x2L.jpg"), ("x1R", root / "CF" / "x1R.jpg")]
    save_rgb(cf_folder / "d.png", 20, 20, 6)
    with pytest.raises(DataError, match="case id 'd' appears twice"):
        collect_inputs(cf_folder)
    (cf_folder / "d.png").unlink()
    save_rgb(cf_folder / "montages.jpg", 20, 20, 7)
    with pytest.raises(DataError, match=r"\['montages'\] would collide"):
        run(cf_folder, tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        collect_inputs(empty)
    with pytest.raises(DataError, match="input not found"):
        collect_inputs(tmp_path / "nothing")


def test_seed_depends_on_seed_case_and_sample_only():
    assert sample_seed(0, "a", 0) == sample_seed(0, "a", 0)
    assert len({sample_seed(0, "a", 0), sample_seed(1, "a", 0), sample_seed(0, "b", 0), sample_seed(0, "a", 1)}) == 4
    assert 0 <= sample_seed(123, "x", 5) < 2**63
