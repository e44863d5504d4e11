"""ingest + align: each source of a city on its grids, in Zarr; and the user's way in (inspect, new-city)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from urbaneo import align
from urbaneo.ingest import ingest
from urbaneo.cli import main
from urbaneo.config import load_city
from urbaneo.errors import InputError
from urbaneo.inspect import detect, new_city
from urbaneo.synth.osm import write_osm_pbf

from conftest import REPO, TINY_CITY


@pytest.fixture
def city_file(tiny_city, tmp_path) -> Path:
    """The tiny city as a real (non-synthetic) city whose inputs point at the generated files."""
    data = yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())
    data.pop("synthetic")
    data["inputs"] = {k: v.replace("resources/raw/tiny", str(tiny_city)) for k, v in data["inputs"].items()}
    path = tmp_path / "config" / "cities" / "tiny.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("source", sorted(align.ALIGNERS))
def test_every_source_aligns_onto_its_grids(city_file, tmp_path, source):
    city = load_city(city_file)
    grids = align.grids_of(city)
    out = tmp_path / f"{source}.zarr"
    facts = ingest(city, source, tmp_path / f"{source}.json")
    assert facts["files"] and all("kind" in f for f in facts["files"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = align.align(city, source, out)
    for group, variables in summary.items():
        ds = align.open_aligned(out, group)
        if group in grids.__dataclass_fields__:  # on a city grid: exactly its pixels and CRS
            g = grids.named(group)
            assert (ds.sizes["y"], ds.sizes["x"]) == g.shape
            assert ds.rio.crs.to_epsg() == g.epsg
            assert ds.x.values[0] == pytest.approx(g.xmin + g.res / 2)
        first = next(iter(ds.data_vars.values()))
        assert first.chunks is not None  # lazily opened with dask


def test_aligned_values_make_sense(city_file, tmp_path):
    city = load_city(city_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        align.align(city, "landsat", tmp_path / "landsat.zarr")
        align.align(city, "lcz_labels", tmp_path / "lcz.zarr")
    ls = align.open_aligned(tmp_path / "landsat.zarr", "base")
    assert set(ls.season.values) == {"spring", "summer", "autumn", "winter"}
    usable = ls.usable.values
    refl = ls.reflectance.values
    assert np.isfinite(refl[:, :, usable.any(0)]).any() and (refl[np.isfinite(refl)] < 1.5).all()
    lcz = align.open_aligned(tmp_path / "lcz.zarr", "planning").lcz
    assert set(np.unique(lcz.values)) <= set(range(0, 18)) and list(lcz.year.values) == TINY_CITY["years"]


def test_bad_input_stops_align_with_one_line_and_no_output(city_file, tmp_path):
    empty = tmp_path / "empty.osm.pbf"
    write_osm_pbf(empty, [])
    data = yaml.safe_load(city_file.read_text())
    data["inputs"]["osm"] = str(empty)
    city_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "osm.zarr"
    with pytest.raises(InputError) as err:
        align.align(load_city(city_file), "osm", out)
    assert "empty.osm.pbf" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".osm.zarr*"))


def test_detect_recognises_every_demo_input(tiny_city):
    manifest = json.loads((tiny_city / "manifest.json").read_text())
    for key, paths in manifest["inputs"].items():
        for p in paths:
            assert detect(tiny_city / p) == key, p


def test_inspect_json_for_landsat(tiny_city, capsys):
    scene = sorted((tiny_city / "landsat").iterdir())[0]
    assert main(["inspect", str(scene), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert {"kind", "collection", "level", "date", "bands", "cloud_fraction"} <= set(facts)
    assert facts["collection"] == 2 and facts["level"] == 1
    assert {"min", "mean", "max"} <= set(facts["bands"]["red"])


def test_inspect_says_why_a_file_cannot_be_read(tmp_path, capsys):
    bad = tmp_path / "scene.tif"
    bad.write_bytes(b"II*\x00garbage")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scene.tif" in err[0]


def test_new_city_from_a_folder(tiny_city, tmp_path, monkeypatch):
    inputs = tmp_path / "download"
    shutil.copytree(tiny_city, inputs)
    (inputs / "notes.xyz").write_text("not an input")
    monkeypatch.chdir(tmp_path)
    report = new_city("mycity", TINY_CITY["aoi"], inputs)
    city = load_city(tmp_path / "config/cities/mycity.yaml")
    assert city["years"] == TINY_CITY["years"]
    assert all(not missing for missing in report["products"].values())
    assert any("notes.xyz" in line for line in report["skipped"])
    with pytest.raises(InputError, match="exists already"):
        new_city("mycity", TINY_CITY["aoi"], inputs)


# --- blockwise on dask (cities larger than memory) ---------------------------------------------------

def _store_digests(root: Path) -> dict[str, str]:
    """sha256 of every file of a Zarr store, its .zarray / .zattrs metadata included."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_gf2_on_a_local_dask_cluster_equals_the_in_process_store(city_file, tmp_path, monkeypatch):
    """Blocks of 256 px over the tiny city's 490 x 500 VHR grid: 4 blocks, 16 Zarr chunks of 128."""
    monkeypatch.setattr(align, "CHUNK", 128)  # a small city, small chunks: several blocks to stitch
    city = load_city(city_file)
    align.align(city, "gf2", tmp_path / "here.zarr")
    align.align(city, "gf2", tmp_path / "dask.zarr", dask_scheduler="local", block=256, workers=2)
    here, there = _store_digests(tmp_path / "here.zarr"), _store_digests(tmp_path / "dask.zarr")
    assert len(here) > 16 and here == there


def test_blockwise_bad_input_is_one_line(city_file, tmp_path):
    data = yaml.safe_load(city_file.read_text())
    data["aoi"] = [119.9, 31.0, 119.95, 31.05]  # about 100 km east of the scene
    city_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "gf2.zarr"
    with pytest.raises(InputError, match=r"GF2_.*\.tif: does not overlap the city grid EPSG:32650") as err:
        align.align(load_city(city_file), "gf2", out, dask_scheduler="local", block=512)
    assert "\n" not in str(err.value) and not out.exists()
    with pytest.raises(InputError, match=r"^block: must be a positive multiple of 512 pixels, got 1000$"):
        align.align(load_city(city_file), "gf2", out, dask_scheduler="local", block=1000)
    with pytest.raises(InputError, match=r"^tcp://127\.0\.0\.1:9: no dask scheduler answers at this address"):
        align.align(load_city(city_file), "gf2", out, dask_scheduler="tcp://127.0.0.1:9")
    assert not out.exists()
