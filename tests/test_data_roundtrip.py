"""Round trip: phantom eyes written in the APTOS layout (make_phantom's writer) read back by AptosDataset."""
import json

import numpy as np
import pytest

from eyeoct.data.datasets import AptosDataset
from eyeoct.data.images import locate_bscan_panel, read_gray
from eyeoct.data.phantom import PhantomConfig, render_case
from eyeoct.data.phantom.export import two_panel_slices, write_phantom_dataset

CONFIG = PhantomConfig(cf_size=48, oct_height=48, oct_width=72)  # 72: the panel seam is not on a JPEG block edge
SEED = 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    write_phantom_dataset(out, 6, "aptos", seed=SEED, config=CONFIG, val_fraction=0.0, two_panel_fraction=0.5)
    records = {r["name"]: r for r in map(json.loads, (out / "phantom_meta.jsonl").read_text().splitlines())}
    return out / "train" / "train.csv", records


def test_every_case_reads_back_as_the_rendered_eye(exported):
    csv, records = exported
    data = AptosDataset(csv, cf_size=CONFIG.cf_size, oct_size=(CONFIG.oct_height, CONFIG.oct_width))
    assert len(data) == 6 and sum(r["two_panel"] for r in records.values()) == 3
    for i in range(len(data)):
        sample = data[i]
        case = render_case(SEED, records[sample["id"]]["meta"]["index"], CONFIG)
        assert sample["cf"].shape == (3, 48, 48) and sample["oct"].shape == (6, 48, 72)
        oct_error = np.abs((sample["oct"].numpy() + 1) * 127.5 - case.oct).mean(axis=(1, 2))
        cf_error = np.abs((sample["cf"].permute(1, 2, 0).numpy() + 1) * 127.5 - case.cf).mean()
        # JPEG q95; the 48 px colour CF also loses detail to chroma subsampling
        assert oct_error.max() < 3.0 and cf_error < 7.0, (sample["id"], oct_error, cf_error)


def test_two_panel_slices_crop_to_exactly_the_bscan_panel(exported):
    csv, records = exported
    two_panel = [name for name, r in records.items() if r["two_panel"]]
    for case in AptosDataset(csv, cf_size=16, oct_size=(16, 16)).cases:
        for path in case.oct_paths:
            image = read_gray(path)
            rows, cols = locate_bscan_panel(image)
            expected_cols = (72, 144) if case.case_id in two_panel else (0, 72)
            assert image.shape[1] == expected_cols[1]
            assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 48, *expected_cols), path


@pytest.mark.parametrize("height,width", [(32, 32), (64, 96)])
def test_panel_found_at_small_sizes_despite_the_scan_line(height, width):
    config = PhantomConfig(cf_size=32, oct_height=height, oct_width=width)
    for index in range(4):
        case = render_case(9, index, config)
        for k, export in enumerate(two_panel_slices(case, config, 9, index)):  # slice 0: horizontal scan line
            rows, cols = locate_bscan_panel(export)
            assert (rows.start, rows.stop, cols.start, cols.stop) == (0, height, width, 2 * width), (index, k)
