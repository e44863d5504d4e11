"""The workflow skeleton run by real Snakemake (in a temporary copy), and its steps run as the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import urbaneo.synth
from conftest import REPO
from snakemake_runs import REPRODUCED, copy_workflow, digests, finish, run_all_on_tiny, snakemake, start_snakemake
from urbaneo.cli import main
from urbaneo.presets import URBAN_DEEP

TINY_KEYS = set(yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())["inputs"])


@pytest.fixture
def wf(tmp_path) -> Path:
    return copy_workflow(tmp_path / "wf")


def one_line_failure(proc: subprocess.CompletedProcess, expected: str) -> list[str]:
    """What is wrong with how ``proc`` failed ([] when it printed exactly the one expected line)."""
    output = proc.stdout + proc.stderr
    problems = []
    if proc.returncode == 0:
        problems.append("exit code 0")
    if f"urbaneo: {expected}" not in proc.stderr.splitlines():
        problems.append(f"missing line 'urbaneo: {expected}'")
    if sum(line.startswith("urbaneo:") for line in output.splitlines()) != 1:
        problems.append("not exactly one urbaneo: line")
    if "Traceback" in output or "Exception" in output:
        problems.append("traceback printed")
    return problems and problems + ["stderr: " + proc.stderr[-2000:]]


# --- Snakemake: lint, dry runs, refusals ---------------------------------------------------------

def test_lint_is_clean(wf):
    proc = snakemake(wf, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_dry_runs(wf):
    tiny = start_snakemake(wf, "-n", "--workflow-profile", str(wf / "workflow/profiles/default"),
                           "all", "--config", "cities=[tiny]")
    both = start_snakemake(copy_workflow(wf.parent / "wf2"), "-n", "ingested", "--config", "cities=[tiny,demo]")
    batch = start_snakemake(copy_workflow(wf.parent / "wf3"), "-n", "all", "--config", "batch=example")
    tiny, both, batch = finish(tiny), finish(both), finish(batch)
    assert tiny.returncode == 0, tiny.stdout + tiny.stderr
    for path in ("resources/raw/tiny", "resources/ingest/tiny/inventory.json", "results/demo/tiny/vegplan/item.txt"):
        assert path in tiny.stdout, path
    assert not (wf / "resources").exists()
    assert both.returncode == 0, both.stdout + both.stderr
    for city in ("tiny", "demo"):
        assert f"resources/ingest/{city}/inventory.json" in both.stdout
    # a batch publishes under its own run name; what does not depend on the run is shared
    assert batch.returncode == 0, batch.stdout + batch.stderr
    for city in ("tiny", "demo"):
        assert f"results/example/{city}/urban/item.txt" in batch.stdout
        assert f"resources/example/urban/{city}/ifcn/model.pt" in batch.stdout
        assert f"resources/align/{city}/viirs.zarr" in batch.stdout


def test_dask_settings_reach_the_align_jobs(wf, tmp_path):
    overlay = tmp_path / "dask.yaml"
    overlay.write_text("dask:\n  scheduler: local\n  block: 1024\n  workers: 3\n")
    proc = snakemake(wf, "-n", "-p", "resources/align/tiny/gf2.zarr", "resources/align/tiny/viirs.zarr",
                     "--configfile", str(overlay), "--config", "cities=[tiny]")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    commands = {line.split("--source ")[1].split()[0]: line for line in proc.stdout.splitlines()
                if "urbaneo align " in line}
    assert "--dask-scheduler local --dask-block 1024 --dask-workers 3" in commands["gf2"]
    assert "--dask" not in commands["viirs"]  # small grids stay in-process


REFUSALS = {  # case: (snakemake arguments, the one line expected after "urbaneo: ")
    "wrong key": (["--config", "colour=red"], "config/config.yaml: colour: additional property not allowed"),
    "bad type": (["--config", "seed=abc"], 'config/config.yaml: seed: expected integer, got "abc"'),
    "unknown batch": (["--config", "batch=nowhere"],
                      "config/batches/nowhere.yaml: batch file not found (batch 'nowhere' is named in config/config.yaml)"),
    "unknown city": (["--config", "cities=[atlantis]"],
                     "config/cities/atlantis.yaml: city file not found (city 'atlantis' is listed in cities)"),
    "city without aoi": (["--config", "cities=[noaoi]"], "config/cities/noaoi.yaml: aoi: required key missing"),
    "missing input": (["--config", "cities=[real]"],
                      "config/cities/real.yaml: inputs.gf2: matches no file: data/real/gf2/*.tif"),
    "vegplan target, species lacking": (["vegplan", "--config", "cities=[tiny,nospecies]"],
                                        "config/cities/nospecies.yaml: city 'nospecies' cannot make product "
                                        "'vegplan': input 'species' is not configured"),
    "product target, reference lacking": (["npp", "--config", "cities=[tiny,nonpp]"],
                                      "config/cities/nonpp.yaml: city 'nonpp' cannot make product 'npp': "
                                      "input 'npp_reference' is not configured"),
    "product target, input lacking": (["urban", "--config", "cities=[tiny,nourban]"],
                                      "config/cities/nourban.yaml: city 'nourban' cannot make product 'urban': "
                                      "input 'urban_labels' is not configured"),
}


@pytest.mark.integration
def test_refusals_are_one_line(tmp_path, write_city):
    """Each bad config or product target a city cannot make stops snakemake with one `urbaneo:` line (run concurrently)."""
    procs = {}
    for i, (case, (args, _)) in enumerate(REFUSALS.items()):
        root = copy_workflow(tmp_path / f"wf{i}")
        write_city(root, "noaoi", aoi=None)
        inputs = {key: f"data/real/{key}/*.tif" for key in TINY_KEYS}
        for key in TINY_KEYS - {"gf2"}:  # every input but gf2 exists
            (root / f"data/real/{key}").mkdir(parents=True)
            (root / f"data/real/{key}/a.tif").write_bytes(b"x")
        write_city(root, "real", synthetic=None, inputs=inputs)
        lacking = yaml.safe_load((root / "config/cities/tiny.yaml").read_text())["inputs"]
        del lacking["npp_reference"]
        write_city(root, "nonpp", inputs=lacking)
        write_city(root, "nourban", inputs={k: v for k, v in lacking.items() if k != "urban_labels"})
        write_city(root, "nospecies", inputs={k: v for k, v in lacking.items() if k != "species"})
        procs[case] = start_snakemake(root, "-n", *args)
    failures = {case: one_line_failure(finish(proc), REFUSALS[case][1]) for case, proc in procs.items()}
    assert not {case: problems for case, problems in failures.items() if problems}


# --- the steps outside Snakemake -----------------------------------------------------------------

def make_real_city(root: Path, write_city) -> str:
    (root / "data/landsat/LC08_A").mkdir(parents=True)
    (root / "data/landsat/LC08_A/B2.TIF").write_bytes(b"b2")
    (root / "data/landsat/LC08_A/MTL.txt").write_bytes(b"mtl")
    (root / "data/landsat/LC08_A/.hidden").write_bytes(b"skip me")
    (root / "data/gf2_2020.tif").write_bytes(b"gf2")
    return write_city(root, "real", synthetic=None,
                      inputs={"landsat": "data/landsat/*", "gf2": "data/gf2_*.tif"})


def test_inventory_cli(tmp_path, write_city, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    city = make_real_city(tmp_path, write_city)
    assert main(["inventory", "--city", city, "--out", "a/inventory.json", "--threads", "2"]) == 0
    assert main(["inventory", "--city", city, "--out", "b/inventory.json"]) == 0
    first = (tmp_path / "a/inventory.json").read_bytes()
    assert first == (tmp_path / "b/inventory.json").read_bytes()  # deterministic
    inventory = json.loads(first)
    assert inventory["city"] == "real" and sorted(inventory["inputs"]) == ["gf2", "landsat"]
    landsat = inventory["inputs"]["landsat"]
    assert landsat["pattern"] == "data/landsat/*"
    assert [f["path"] for f in landsat["files"]] == ["data/landsat/LC08_A/B2.TIF", "data/landsat/LC08_A/MTL.txt"]
    assert landsat["files"][0] == {"path": "data/landsat/LC08_A/B2.TIF", "size": 2,
                                   "sha256": hashlib.sha256(b"b2").hexdigest()}
    assert not list(tmp_path.glob("a/.*"))  # no temporary left behind

    (tmp_path / "data/gf2_2020.tif").unlink()
    capsys.readouterr()
    assert main(["inventory", "--city", city, "--out", "c/inventory.json"]) == 2
    assert capsys.readouterr().err == "urbaneo: config/cities/real.yaml: inputs.gf2: matches no file: data/gf2_*.tif\n"
    assert not (tmp_path / "c/inventory.json").exists()


def test_check_config_cli(tmp_path, write_city, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_real_city(tmp_path, write_city)
    (tmp_path / "config/config.yaml").write_text("cities: [real]\n")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "config/config.yaml: ok (run 'demo', preset 'demo', seed 0, 1 city)" in out
    assert "npp      cannot make: input 'par' is not configured" in out
    assert "lcz      cannot make: input 'lcz_labels' is not configured" in out

    (tmp_path / "config/config.yaml").write_text("cities: [real]\nrun name: x\n")
    assert main(["check-config"]) == 2
    assert capsys.readouterr().err == "urbaneo: config/config.yaml: run name: additional property not allowed\n"


def test_synth_cli_passes_the_city(tmp_path, monkeypatch, capsys):
    """How the synth rule meets the generator: the CLI reads the city file and calls synth_city."""
    calls = []

    def fake_synth_city(out_dir, **kwargs):
        calls.append((str(out_dir), kwargs))
        return {"inputs": {"gf2": ["gf2/a.tif"], "landsat": ["landsat/S1", "landsat/S2"]}}

    monkeypatch.setattr(urbaneo.synth, "synth_city", fake_synth_city, raising=False)
    monkeypatch.chdir(REPO)  # read-only use of config/cities/tiny.yaml
    assert main(["synth", str(tmp_path / "tiny"), "--city-config", "config/cities/tiny.yaml"]) == 0
    assert calls == [(str(tmp_path / "tiny"), {"seed": 1, "profile": "tiny", "aoi": [118.745, 32.030, 118.760, 32.043],
                                                "years": [2020, 2021], "region_buffer_km": 19, "name": "tiny"})]
    assert "wrote 3 paths for 2 inputs" in capsys.readouterr().out
    assert main(["synth", str(tmp_path / "other"), "--seed", "7", "--profile", "tiny"]) == 0
    assert calls[-1] == (str(tmp_path / "other"), {"seed": 7, "profile": "tiny"})


# --- end to end ----------------------------------------------------------------------------------

@pytest.mark.integration
def test_all_on_tiny_generated_city(tiny_run):
    wf = tiny_run
    assert (wf / "resources/raw/tiny/manifest.json").is_file()
    inventory = json.loads((wf / "resources/ingest/tiny/inventory.json").read_text())
    assert set(inventory["inputs"]) == TINY_KEYS
    for key, entry in inventory["inputs"].items():
        assert entry["files"], key
        for f in entry["files"]:
            assert len(f["sha256"]) == 64 and f["size"] == (wf / f["path"]).stat().st_size
    first = inventory["inputs"]["gf2"]["files"][0]
    assert hashlib.sha256((wf / first["path"]).read_bytes()).hexdigest() == first["sha256"]
    for rule in ("synth", "inventory", "ingest_landsat", "align_landsat", "tiles_lcz"):
        assert (wf / f"logs/tiny/{rule}.log").is_file() and (wf / f"benchmarks/tiny/{rule}.tsv").is_file()
    # every source ingested and aligned, every model tiled
    for key in TINY_KEYS:
        assert json.loads((wf / f"resources/ingest/tiny/{key}.json").read_text())["files"], key
    from urbaneo.align import ALIGNERS, open_aligned

    for key in ALIGNERS:
        assert (wf / f"resources/align/tiny/{key}.zarr").is_dir(), key
    assert open_aligned(wf / "resources/align/tiny/landsat.zarr", "base").sizes["time"] >= 6
    for model in ("npp", "lcz", "urban", "vegplan"):
        assert (wf / f"resources/tiles/tiny/{model}.parquet").is_file(), model
    # published: previews of the aligned inputs, raw inputs in a STAC catalog that validates offline,
    # and the run's resolved config
    from urbaneo.artifacts.stac import validate_catalog

    for source in ("landsat", "gf2", "viirs", "lcz_labels", "urban_labels", "osm"):
        assert (wf / f"results/demo/tiny/inputs/{source}.png").read_bytes()[:4] == b"\x89PNG", source
    assert validate_catalog(wf / "results/demo/catalog.json") == []
    assert len(json.loads((wf / "results/demo/tiny/inputs/items.json").read_text())) == len(TINY_KEYS)
    # the urban product: mask, polygons, overlay, the evaluation of every method, STAC items
    urban = wf / "results/demo/tiny/urban"
    for name in ("urban_mask.tif", "urban_polygons.gpkg", "urban_overlay.png", "metrics.json", "metrics.png",
                 "methods.png"):
        assert (urban / name).is_file(), name
    item = (urban / "item.txt").read_text().strip()
    assert (wf / f"results/demo/stac/urban/{item}/{item}.json").is_file()
    metrics = json.loads((urban / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"ifcn", "fcn32s", "fcn16s", "fcn8s", "unet", "svm", "otsu", "threshold"}
    for method in ("ifcn", "svm"):
        assert (wf / f"logs/tiny/urban_train_{method}_demo.log").is_file()
    snapshot = yaml.safe_load((wf / "results/demo/config.yaml").read_text())
    assert snapshot["config"]["cities"] == ["tiny"] and snapshot["cities"]["tiny"]["region_buffer_km"] == 19

    again = snakemake(wf, "-n", "all", "--config", "cities=[tiny]")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.integration
@pytest.mark.skipif(bool(os.environ.get("URBANEO_SLURM")),
                    reason="tests/test_slurm.py makes the second run (on the cluster) and the same comparison")
def test_same_city_twice_gives_byte_identical_outputs(tiny_run, tmp_path):
    """Reproducibility: a second run in another folder writes the same bytes (inputs, tiles, trained
    models and their predictions, everything published). Where a SLURM cluster is up (CI), the
    SLURM test's run is that second run."""
    again = run_all_on_tiny(tmp_path / "wf")
    for folder in REPRODUCED:
        first, second = digests(tiny_run / folder), digests(again / folder)
        assert first and first == second, folder


@pytest.mark.integration
def test_changing_one_param_makes_a_new_version(tiny_run, tmp_path, capsys):
    """Rerun the tiny city's urban product with another param: only the urban jobs rerun, and the
    catalog gains a version that points back to the one it supersedes; `catalog diff` names the change."""
    from urbaneo.artifacts.stac import load_items

    wf = tmp_path / "wf"
    shutil.copytree(tiny_run, wf, symlinks=True)  # copy2 keeps mtimes: nothing upstream reruns
    old = (wf / "results/demo/tiny/urban/item.txt").read_text().strip()
    before = load_items(wf / "results/demo")
    proc = snakemake(wf, "--cores", "2", "urban", "--config", "cities=[tiny]", "max_epochs=2", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = set(re.findall(r"rule (\w+):", proc.stdout + proc.stderr))
    assert {"urban_train", "urban_predict", "urban_evaluate", "urban_publish"} <= ran
    assert not ran & {"synth", "align", "ingest", "tiles"}
    new = (wf / "results/demo/tiny/urban/item.txt").read_text().strip()
    assert new != old
    items = load_items(wf / "results/demo")
    # new versions of the product and of the models it depends on only; the inputs stay as they were
    added = {items[i]["collection"] for i in set(items) - set(before)}
    assert added == {"urban", "models"}
    assert all(items[i] == before[i] for i in before if before[i]["collection"] == "inputs")
    assert items[old]["properties"]["deprecated"] is True and not items[new]["properties"].get("deprecated")
    links = {link["rel"]: link["href"] for link in items[new]["links"]}
    assert links["predecessor-version"].endswith(f"{old}.json")
    assert main(["catalog", "diff", old, new, "--run-dir", str(wf / "results/demo")]) == 0
    out = capsys.readouterr().out
    assert "methods.ifcn.epochs" in out


@pytest.mark.integration
def test_report_holds_every_published_figure(tiny_run, tmp_path):
    report = tmp_path / "report.html"
    proc = snakemake(tiny_run, "--report", str(report), "all", "--config", "cities=[tiny]", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    added = set(re.findall(r"Adding (\S+\.png)", proc.stdout + proc.stderr))
    assert {"urban_overlay.png", "metrics.png", "methods.png", "viirs.png", "landsat.png", "loss.png"} <= added
    assert report.stat().st_size > 100_000


@pytest.mark.integration
def test_removing_osm_reruns_exactly_the_jobs_that_read_it(tiny_run, tmp_path):
    """The NPP jobs take OSM only through their declared inputs: a city file without `osm` reruns the
    inventory (its file list changed) and the NPP jobs, which are told so and read no OSM store."""
    wf = tmp_path / "wf"
    shutil.copytree(tiny_run, wf, symlinks=True)  # copy2 keeps mtimes: nothing reruns by age
    city = wf / "config/cities/tiny.yaml"
    data = yaml.safe_load(city.read_text())
    del data["inputs"]["osm"]
    city.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = snakemake(wf, "-n", "-p", "npp", "--config", "cities=[tiny]")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout, re.M))
    assert jobs == {"inventory", "publish_inputs", "npp_train", "npp_predict", "npp_evaluate", "npp_longterm",
                    "npp_publish", "npp"}
    commands = [line for line in proc.stdout.splitlines() if re.search(r"\burbaneo npp ", line)]
    assert len(commands) == 6 and all("--no-osm" in c for c in commands)
    assert "osm.zarr" not in proc.stdout


@pytest.mark.integration
def test_editing_one_hyperparameter_reruns_exactly_its_jobs(tiny_run, tmp_path):
    """A learning rate edited in presets.py (here in a copy of the package put first on the path) reruns
    the urban stage's deep-network training and what depends on it, and nothing else."""
    wf = tmp_path / "wf"
    shutil.copytree(tiny_run, wf, symlinks=True)
    package = tmp_path / "src" / "urbaneo"
    shutil.copytree(Path(urbaneo.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    presets = package / "presets.py"
    text = presets.read_text()
    assert '"demo": {"epochs": 30, "batch_size": 8, "lr": 1e-3,' in text
    presets.write_text(text.replace('"demo": {"epochs": 30, "batch_size": 8, "lr": 1e-3,',
                                    '"demo": {"epochs": 30, "batch_size": 8, "lr": 2e-3,'))
    proc = snakemake(wf, "-n", "all", "--rerun-triggers", "params", "--config", "cities=[tiny]",
                     env={"PYTHONPATH": str(package.parent)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = re.findall(r"^(?:local)?rule (\w+):", proc.stdout, re.M)
    assert jobs.count("urban_train") == len(URBAN_DEEP)  # the thresholds and the SVM use no learning rate
    assert set(jobs) == {"urban_train", "urban_predict", "urban_evaluate", "urban_publish", "vegplan_site",
                         "vegplan_train", "vegplan_agent", "vegplan_plan", "vegplan_evaluate", "vegplan_robustness",
                         "vegplan_publish", "all"}  # the vegetation plan reads the urban mask
