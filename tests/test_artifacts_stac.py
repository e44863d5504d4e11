"""Version ids, the run's static STAC catalog, offline validation and `urbaneo catalog`."""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import rasterio

from urbaneo.artifacts.catalog_cli import add_parser
from urbaneo.artifacts.stac import (load_items, publish, register_inputs, register_model, time_range,
                                    validate_catalog)
from urbaneo.artifacts.version import (_git_commit, code_version, multihash_sha256, sha256_tree,
                                       version_id)
from urbaneo.errors import InputError
from urbaneo.grid import Grid

GRID = Grid(32650, 660000.0, 3550000.0, 30.0, 8, 6)
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
TENSOR = {"shape": [-1, 6, 64, 64], "dim_order": ["batch", "channel", "height", "width"],
          "data_type": "float32"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing here may reach the network: validation must work from vendored schemas."""
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _tif(path: Path, value: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=GRID.width, height=GRID.height, count=1,
                       dtype="float32", crs=GRID.crs, transform=GRID.transform) as dst:
        dst.write(np.full((1, GRID.height, GRID.width), value, "float32"))
    return path


def _inventory(root: Path, value: float = 1.0) -> Path:
    raw = _tif(root / "raw" / "viirs_2020.tif", value)
    entry = {"path": "raw/viirs_2020.tif", "size": raw.stat().st_size,
             "sha256": hashlib.sha256(raw.read_bytes()).hexdigest()}
    inventory = root / "inventory.json"
    inventory.write_text(json.dumps({"format": "urbaneo.inventory/1", "city": "demo", "inputs": {
        "viirs": {"pattern": "raw/*.tif", "files": [entry]}}}))
    return inventory


def _publish(root: Path, lr: float, rmse: float, inputs=("inputs/viirs",)):
    out = root / "out"
    _tif(out / "npp_2020.tif", 10 * lr)
    (out / "metrics.json").write_text(json.dumps({"rmse": rmse, "bias": {"mean": 0.1}}))
    return publish(root / "results" / "demo", product="npp", city="demo", grid=GRID,
                   assets={"map": (out / "npp_2020.tif", COG, ["data"], {"title": "NPP 2020"}),
                           "metrics": (out / "metrics.json", "application/json", ["metrics"])},
                   params={"lr": lr, "epochs": 2}, lineage="npp_map", inputs=list(inputs), period=2020)


def _publish_lcz(root: Path):
    _tif(root / "out" / "lcz.tif", 3)
    return publish(root / "results" / "demo", product="lcz", city="demo", grid=GRID,
                   assets={"classes": (root / "out" / "lcz.tif", COG, ["data"])},
                   params={"depth": 2}, lineage="lcz_map", inputs=["inputs/viirs"], period=2020)


def _build(root: Path, lcz_first: bool = False):
    """Inputs, two versions of npp (lr 0.1 then 0.2), one of lcz, a model trained on npp's first."""
    run = root / "results" / "demo"
    (inputs,) = register_inputs(run, "demo", _inventory(root), period=(2019, 2021), root=root, grid=GRID)
    if lcz_first:
        _publish_lcz(root)
    first = _publish(root, 0.1, 1.5)
    second = _publish(root, 0.2, 1.2)
    if not lcz_first:
        _publish_lcz(root)
    (root / "ckpt.pt").write_bytes(b"not really weights")
    model = register_model(run, product="npp", city="demo", checkpoint_path=root / "ckpt.pt",
                           architecture="st-MAE", framework_version="2.14.1",
                           hyperparameters={"lr": 0.001, "mask_ratio": 0.75},
                           input_spec=[{"name": "landsat", "input": TENSOR}],
                           output_spec=[{"name": "reconstruction", "tasks": ["regression"], "result": TENSOR}],
                           training_items=["inputs/viirs", first.id], period=(2019, 2021))
    return inputs, first, second, model


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _links(item, rel: str) -> list[str]:
    return [Path(link.href).stem for link in item.links if link.rel == rel]


def test_version_id_changes_if_and_only_if_one_part_changes():
    inputs, params, code = {"inputs/viirs": "input-viirs-1", "aligned.zarr": "ab"}, \
        {"lr": 0.1, "net": {"depth": 4, "widths": [8, 16]}}, "c0de"
    vid = version_id(inputs, params, code)
    assert len(vid) == 16 and int(vid, 16) >= 0
    # Dict order is not content.
    assert version_id(dict(reversed(inputs.items())), {"net": {"widths": [8, 16], "depth": 4}, "lr": 0.1},
                      code) == vid
    changed = [version_id({**inputs, "aligned.zarr": "cd"}, params, code),
               version_id({**inputs, "extra.tif": "ef"}, params, code),
               version_id(inputs, {**params, "lr": 0.2}, code),
               version_id(inputs, {**params, "net": {"depth": 4, "widths": [16, 8]}}, code),
               version_id(inputs, params, "c0de2")]
    assert vid not in changed and len(set(changed)) == len(changed)


def test_checksums_and_code_identity(tmp_path):
    data = tmp_path / "a.bin"
    data.write_bytes(b"urbaneo")
    assert multihash_sha256(data) == "1220" + hashlib.sha256(b"urbaneo").hexdigest()
    folder = tmp_path / "cube.zarr"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "0").write_bytes(b"1")
    before = sha256_tree(folder)
    (folder / "x" / "0").rename(folder / "x" / "1")  # same bytes, another chunk name
    assert sha256_tree(folder) != before and sha256_tree(data) == hashlib.sha256(b"urbaneo").hexdigest()

    code = code_version()
    assert code["package"] == "urbaneo" and len(code["source_sha256"]) == 64
    assert code["git_commit"] == "unknown" or len(code["git_commit"]) == 40


def test_git_commit_is_read_from_the_git_folder(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert _git_commit(tmp_path) == "unknown"
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{commit} refs/heads/main\n")
    assert _git_commit(tmp_path) == commit
    (git / "refs" / "heads" / "main").write_text(commit[::-1] + "\n")  # a loose ref wins
    assert _git_commit(tmp_path) == commit[::-1]
    (git / "HEAD").write_text(commit + "\n")  # detached
    assert _git_commit(tmp_path) == commit


def test_time_range_covers_whole_years_and_days():
    assert time_range((2019, 2021)) == ("2019-01-01T00:00:00Z", "2021-12-31T23:59:59Z")
    assert time_range(2020) == ("2020-01-01T00:00:00Z", "2020-12-31T23:59:59Z")
    assert time_range(("2020-03-01", "2020-05-31T12:00:00Z")) == ("2020-03-01T00:00:00Z",
                                                                  "2020-05-31T12:00:00Z")


def test_publish_versions_link_and_deprecate(tmp_path):
    run = tmp_path / "results" / "demo"
    (inputs,) = register_inputs(run, "demo", _inventory(tmp_path), period=(2019, 2021), root=tmp_path)
    raw = tmp_path / "raw" / "viirs_2020.tif"
    assert inputs.assets["raw/viirs_2020.tif"].extra_fields["file:checksum"] == multihash_sha256(raw)
    assert (Path(inputs.get_self_href()).parent / inputs.assets["raw/viirs_2020.tif"].href).resolve() == raw

    first = _publish(tmp_path, 0.1, 1.5)
    props = first.properties
    assert first.id == f"npp-demo-{props['version']}" and first.collection_id == "npp"
    assert first.datetime is None and props["start_datetime"] == "2020-01-01T00:00:00Z"
    assert props["proj:code"] == "EPSG:32650" and props["proj:shape"] == [6, 8]
    assert props["proj:transform"] == [30.0, 0.0, 660000.0, 0.0, -30.0, 3550000.0]
    assert {"urbaneo", "rasterio", "GDAL", "torch", "snakemake"} <= props["processing:software"].keys()
    assert props["processing:lineage"] == 'rule npp_map: params {"epochs":2,"lr":0.1}'
    copy = Path(first.get_self_href()).parent / "npp_2020.tif"
    assert first.assets["map"].extra_fields["file:checksum"] == multihash_sha256(copy)
    assert first.assets["map"].extra_fields["file:size"] == copy.stat().st_size
    assert first.assets["map"].title == "NPP 2020"
    assert _links(first, "derived_from") == [inputs.id] and "deprecated" not in props

    # The same inputs, params and code: the same version, and not one byte rewritten.
    before = _files(run)
    mtimes = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    assert _publish(tmp_path, 0.1, 1.5).id == first.id
    assert _files(run) == before and {p: p.stat().st_mtime_ns for p in run.rglob("*")} == mtimes

    # One param changed: a new version linked to its predecessor, which is deprecated.
    second = _publish(tmp_path, 0.2, 1.2)
    assert second.id != first.id
    items = load_items(run)
    old, new = items[first.id], items[second.id]
    assert old["properties"]["deprecated"] is True and "deprecated" not in new["properties"]
    rels = {(link["rel"], Path(link["href"]).stem) for link in old["links"]}
    assert {("latest-version", second.id), ("successor-version", second.id)} <= rels
    assert {(link["rel"], Path(link["href"]).stem) for link in new["links"]} == {
        ("predecessor-version", first.id), ("derived_from", inputs.id)}
    # The old version keeps its own files.
    assert (run / "stac" / "npp" / first.id / "npp_2020.tif").read_bytes() != \
        (run / "stac" / "npp" / second.id / "npp_2020.tif").read_bytes()
    collection = json.loads((run / "stac" / "npp" / "collection.json").read_text())
    assert sorted(Path(link["href"]).parent.name for link in collection["links"] if link["rel"] == "item") \
        == sorted([first.id, second.id])

    # Going back to the first params makes the first version the latest again.
    assert _publish(tmp_path, 0.1, 1.5).id == first.id
    items = load_items(run)
    assert "deprecated" not in items[first.id]["properties"] and items[second.id]["properties"]["deprecated"]
    assert validate_catalog(run / "catalog.json") == []


def test_changed_input_file_or_item_gives_a_new_version(tmp_path):
    aligned = tmp_path / "aligned.bin"
    aligned.write_bytes(b"cube v1")
    register_inputs(tmp_path / "results" / "demo", "demo", _inventory(tmp_path), period=2020, root=tmp_path)
    first = _publish(tmp_path, 0.1, 1.5, inputs=("inputs/viirs", aligned))
    aligned.write_bytes(b"cube v2")
    second = _publish(tmp_path, 0.1, 1.5, inputs=("inputs/viirs", aligned))
    assert second.id != first.id and _links(second, "predecessor-version") == [first.id]
    assert first.properties["urbaneo:inputs"][aligned.as_posix()] == hashlib.sha256(b"cube v1").hexdigest()

    # New raw data: a new inputs version, and the product made from it is new too.
    (new_inputs,) = register_inputs(tmp_path / "results" / "demo", "demo", _inventory(tmp_path, 2.0),
                                    period=2020, root=tmp_path)
    third = _publish(tmp_path, 0.1, 1.5, inputs=("inputs/viirs", aligned))
    assert third.id != second.id and _links(third, "derived_from") == [new_inputs.id]


def test_model_item_has_mlm_fields_and_training_links(tmp_path):
    inputs, first, _, model = _build(tmp_path)
    props = model.properties
    assert model.collection_id == "models" and model.id.startswith("model-npp-demo-")
    assert props["mlm:framework"] == "PyTorch" and props["mlm:framework_version"] == "2.14.1"
    assert props["mlm:architecture"] == "st-MAE" and props["mlm:tasks"] == ["regression"]
    assert props["mlm:hyperparameters"] == {"lr": 0.001, "mask_ratio": 0.75}
    assert props["mlm:input"][0]["input"] == TENSOR
    assert model.assets["model"].roles == ["mlm:model", "data"]
    assert model.assets["model"].extra_fields["mlm:artifact_type"] == "torch.save"
    assert sorted(_links(model, "derived_from")) == sorted([inputs.id, first.id])
    assert "https://stac-extensions.github.io/mlm/v1.5.0/schema.json" in model.stac_extensions


def test_catalog_validates_offline_and_reports_broken_items(tmp_path):
    _, first, _, model = _build(tmp_path)
    catalog = tmp_path / "results" / "demo" / "catalog.json"
    assert validate_catalog(catalog) == []

    path = Path(first.get_self_href())
    item = json.loads(path.read_text())
    item["assets"]["map"]["file:checksum"] = 1220
    item["stac_extensions"].append("https://stac-extensions.github.io/eo/v2.0.0/schema.json")
    path.write_text(json.dumps(item))
    model_path = Path(model.get_self_href())
    item = json.loads(model_path.read_text())
    del item["properties"]["mlm:tasks"]
    model_path.write_text(json.dumps(item))

    errors = validate_catalog(catalog)
    rel = path.relative_to(catalog.parent).as_posix()
    assert f"{rel}: file v2.1.0: assets/map/file:checksum: 1220 is not of type 'string'" in errors
    assert any(e.startswith(f"{rel}: no vendored schema for https://stac-extensions.github.io/eo/") for e in errors)
    assert any("mlm v1.5.0: properties: 'mlm:tasks' is a required property" in e for e in errors)
    assert len(errors) == 3


def test_catalog_is_byte_identical_when_built_twice(tmp_path):
    # Two folders, and the products published in another order (parallel jobs).
    _build(tmp_path / "a", lcz_first=False)
    _build(tmp_path / "b", lcz_first=True)
    a, b = _files(tmp_path / "a" / "results"), _files(tmp_path / "b" / "results")
    assert a.keys() == b.keys() and a == b
    assert any(name.endswith("catalog.json") for name in a)


def test_bad_inventory_and_inputs_are_one_line_errors(tmp_path):
    run = tmp_path / "results" / "demo"
    bad = tmp_path / "inventory.json"
    bad.write_text('{"format": "something/2"}')
    with pytest.raises(InputError, match=r"inventory\.json: not an urbaneo inventory"):
        register_inputs(run, "demo", bad, period=2020, root=tmp_path)
    with pytest.raises(InputError, match=r"inventory\.json: inventory of city 'demo', expected 'paris'"):
        register_inputs(run, "paris", _inventory(tmp_path), period=2020, root=tmp_path)
    with pytest.raises(InputError, match=r"inputs/viirs: input of city 'demo' is neither an item"):
        _publish(tmp_path, 0.1, 1.5)
    register_inputs(run, "demo", _inventory(tmp_path), period=2020, root=tmp_path)
    with pytest.raises(InputError, match=r"nope\.tif: asset 'map' of npp-demo-\w+: no such file"):
        publish(run, product="npp", city="demo", grid=GRID, assets={"map": (tmp_path / "nope.tif", COG, ["data"])},
                params={}, lineage="npp_map", inputs=["inputs/viirs"], period=2020)
    assert not list(run.glob("stac/npp/*")) and "npp" not in {i["collection"] for i in load_items(run).values()}


def _cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="urbaneo")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func(args) == 0


def test_cli_list_show_diff(tmp_path, capsys):
    inputs, first, second, model = _build(tmp_path)
    run = ["--run-dir", str(tmp_path / "results" / "demo")]

    _cli(["catalog", "list", *run])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    lcz = next(row for row in rows if row[0] == "lcz")
    assert rows == [["inputs", "viirs", "demo", inputs.properties["version"], "latest", inputs.id], lcz,
                    ["models", "npp", "demo", model.properties["version"], "latest", model.id],
                    ["npp", "npp", "demo", second.properties["version"], "latest", second.id],
                    ["npp", "npp", "demo", first.properties["version"], "superseded", first.id]]

    _cli(["catalog", "show", first.id, *run])
    out = capsys.readouterr().out
    assert f"superseded by {second.id}" in out and f"successor    {second.id}" in out
    assert f"derived_from {inputs.id}" in out and "map: ./npp_2020.tif" in out

    _cli(["catalog", "show", second.id, "--json", *run])
    assert json.loads(capsys.readouterr().out)["id"] == second.id

    _cli(["catalog", "diff", first.id, second.id, *run])
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [f"{first.id} -> {second.id}", "inputs: same", "params:", "  ~ lr: 0.1 -> 0.2"]
    assert out[4].startswith("code: same (source sha256 ")
    assert "  ~ map: 1220" in "\n".join(out)
    assert out[-3:] == ["metrics:", "  bias.mean: 0.1 -> 0.1 (+0)", "  rmse: 1.5 -> 1.2 (-0.3)"]

    with pytest.raises(InputError, match=r"catalog\.json: no item 'npp-demo-0000'"):
        _cli(["catalog", "show", "npp-demo-0000", *run])
    with pytest.raises(InputError, match=r"elsewhere/catalog\.json: no catalog"):
        _cli(["catalog", "list", "--run-dir", str(tmp_path / "elsewhere")])
