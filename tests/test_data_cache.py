"""The on-disk cache: keyed by preprocessing settings, identical to uncached reads, rebuilt when inputs change."""
import json
import os
from dataclasses import asdict

import numpy as np
import pytest
import torch

from data_synthetic import bscan_panel, save, write_aptos_layout
from eyeoct.data import cache as cache_module
from eyeoct.data import datasets
from eyeoct.data.cache import ArrayCache, settings_key
from eyeoct.data.datasets import AptosDataset, PhantomDataset
from eyeoct.data.phantom import PHANTOM_VERSION


def _npz_files(folder):
    return sorted(p.name for p in folder.glob("*.npz"))


def test_cached_items_equal_uncached_and_size_changes_the_key(tmp_path):
    csv = write_aptos_layout(tmp_path / "aptos", patients=2)
    cache_dir = tmp_path / "cache"
    plain = AptosDataset(csv, cf_size=24, oct_size=(16, 24))
    cached = AptosDataset(csv, cf_size=24, oct_size=(16, 24), cache_dir=cache_dir)
    first = [cached[i] for i in range(len(cached))]  # cold: decodes and writes
    assert len(_npz_files(cached.cache.folder)) == 4
    warm = AptosDataset(csv, cf_size=24, oct_size=(16, 24), cache_dir=cache_dir)
    warm.load_arrays = None  # a warm cache must not decode anything
    for i, reference in enumerate(plain[i] for i in range(len(plain))):
        for sample in (first[i], warm[i]):
            assert sample.keys() == reference.keys() and sample["id"] == reference["id"]
            assert torch.equal(sample["cf"], reference["cf"]) and torch.equal(sample["oct"], reference["oct"])
    resized = AptosDataset(csv, cf_size=24, oct_size=(16, 20), cache_dir=cache_dir)
    assert resized.cache.key != cached.cache.key
    assert resized[0]["oct"].shape == (6, 16, 20)
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([cached.cache.key, resized.cache.key])
    settings = json.loads((cache_dir / cached.cache.key / "settings.json").read_text())
    assert {k: v for k, v in settings.items() if k != "code"} == {"kind": "image_files", "cf_size": 24, "oct_size": [16, 24]}
    assert len(settings["code"]) == 12


def test_settings_key_is_stable_and_sensitive():
    assert settings_key({"a": 1, "b": [2, 3]}) == settings_key({"b": [2, 3], "a": 1})
    assert settings_key({"a": 1}) != settings_key({"a": 2})


def test_code_fingerprint_follows_the_source(tmp_path):
    source = tmp_path / "reader.py"
    source.write_text("x = 1\n")
    before = cache_module.code_fingerprint([source])
    assert cache_module.code_fingerprint([source]) == before
    source.write_text("x = 2\n")
    assert cache_module.code_fingerprint([source]) != before


def test_edited_source_image_is_decoded_again(tmp_path):
    csv = write_aptos_layout(tmp_path / "aptos", patients=1, eyes=("L",))
    cache_dir = tmp_path / "cache"
    before = AptosDataset(csv, cf_size=16, oct_size=(32, 48), cache_dir=cache_dir)[0]["oct"]
    slice_path = tmp_path / "aptos" / "OCT" / "000000_L" / "000000_L_2.png"
    replacement = bscan_panel(32, 48, seed=99)
    save(replacement, slice_path)
    os.utime(slice_path, ns=(1, 1))
    after = AptosDataset(csv, cf_size=16, oct_size=(32, 48), cache_dir=cache_dir)[0]["oct"]
    assert torch.equal(after[2], torch.from_numpy(replacement).float() / 127.5 - 1)
    assert torch.equal(after[0], before[0]) and not torch.equal(after[2], before[2])


def test_phantom_disk_cache_and_unreadable_entry(tmp_path):
    phantom = {"cf_size": 16, "oct_height": 16, "oct_width": 16}
    data = PhantomDataset(seed=1, num_cases=2, phantom=phantom, cache_dir=tmp_path, cache_in_memory=False)
    reference = data[1]["oct"]
    entry = data.cache.path_for(data.case_id(1))
    assert np.array_equal(np.load(entry)["oct"], ((reference + 1) * 127.5).round().numpy().astype(np.uint8))
    entry.write_bytes(b"garbage")
    assert torch.equal(data[1]["oct"], reference)
    noise_free = PhantomDataset(seed=1, num_cases=2, phantom=phantom, noise_free=True, cache_dir=tmp_path)
    assert noise_free.cache.key != data.cache.key


@pytest.mark.parametrize("case_id", ["a/b", "../x", "ü ö"])
def test_cache_file_names_are_safe(tmp_path, case_id):
    cache = ArrayCache(tmp_path, {"k": 1})
    path = cache.path_for(case_id)
    assert path.parent == cache.folder
    cache.store(case_id, {"cf": np.ones((2, 2, 3), np.uint8)}, "sig")
    assert cache.load(case_id, "sig")["cf"].sum() == 12
    assert cache.load(case_id, "other") is None


def test_temporary_names_are_unique_per_host_process_and_call(tmp_path):
    import os
    import re
    import socket

    from ldm.util.files import atomic_write, temporary_sibling

    target = tmp_path / "entry.npz"
    names = {temporary_sibling(target).name for _ in range(50)}
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())
    assert len(names) == 50  # the random part
    assert all(n.startswith(f".entry.npz.{host}-{os.getpid()}-") and n.endswith(".tmp") for n in names)
    with pytest.raises(RuntimeError):
        atomic_write(target, lambda handle: (_ for _ in ()).throw(RuntimeError("disk full")))
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


def test_phantom_cache_key_is_its_version_constant_not_its_files(tmp_path, monkeypatch):
    def no_file_hashing(paths):
        raise AssertionError(f"the phantom key must not hash source files, got {paths}")

    monkeypatch.setattr(datasets, "code_fingerprint", no_file_hashing)
    dataset = PhantomDataset(seed=2, num_cases=1, phantom={"cf_size": 16}, cache_dir=tmp_path)
    assert dataset.cache_settings() == {"kind": "phantom", "seed": 2, "noise_free": False,
                                        "config": asdict(dataset.config), "version": PHANTOM_VERSION}
    monkeypatch.setattr(datasets, "PHANTOM_VERSION", PHANTOM_VERSION + 1)
    bumped = PhantomDataset(seed=2, num_cases=1, phantom={"cf_size": 16}, cache_dir=tmp_path)
    assert bumped.cache.key != dataset.cache.key
