"""Shared test setup: the `integration` marker and a factory for city files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


# Fixtures that run Snakemake: every test using one is an integration test, whatever its file says.
SNAKEMAKE_FIXTURES = {"tiny_run", "wf"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: runs the real workflow with Snakemake (`-m 'not integration'` skips them)")


def pytest_collection_modifyitems(items):
    for item in items:
        if SNAKEMAKE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_tests_run_no_snakemake(request, monkeypatch):
    """A unit test that starts Snakemake fails (the executable is swapped for a name that says why)."""
    if request.node.get_closest_marker("integration") is None:
        import snakemake_runs

        monkeypatch.setattr(snakemake_runs, "SNAKEMAKE", Path("/unit-tests-run-no-snakemake:mark-the-test-integration"))


@pytest.fixture
def write_city():
    """write_city(root, name, **fields) -> relative path of config/cities/<name>.yaml.

    Starts from the tiny city's file; a field set to None is removed.
    """

    def write(root: Path, name: str, **fields) -> str:
        data = yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())
        data["name"] = name
        for key, value in fields.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        rel = f"config/cities/{name}.yaml"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(yaml.safe_dump(data, sort_keys=False))
        return rel

    return write


# The tiny generated city, made once per test session and shared (read-only) by every test that
# needs real-format inputs: the parameters of config/cities/tiny.yaml.
_TINY = yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())
TINY_CITY = dict(seed=_TINY["synthetic"]["seed"], profile=_TINY["synthetic"]["profile"], aoi=tuple(_TINY["aoi"]),
                 years=_TINY["years"], name="tiny", region_buffer_km=_TINY["region_buffer_km"])


@pytest.fixture(scope="session")
def tiny_city(tmp_path_factory) -> Path:
    from urbaneo.synth import synth_city

    out = tmp_path_factory.mktemp("synth") / "tiny"
    synth_city(out, **TINY_CITY)
    return out


def tiny_city_file(tiny_city: Path, root: Path) -> Path:
    """The tiny city's file with its inputs pointing at the session's generated files, written in ``root``."""
    data = yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())
    data.pop("synthetic")
    data["inputs"] = {k: v.replace("resources/raw/tiny", str(tiny_city)) for k, v in data["inputs"].items()}
    (root / "tiny.yaml").write_text(yaml.safe_dump(data))
    return root / "tiny.yaml"


def align_tiny(tiny_city: Path, root: Path, *sources: str) -> dict:
    """The tiny city's ``sources`` aligned into ``root`` (``<source>.zarr``, as resources/align/<city>);
    returns the loaded city (its file written in ``root``)."""
    import warnings

    from urbaneo import align
    from urbaneo.config import load_city

    city = load_city(tiny_city_file(tiny_city, root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in sources:
            align.align(city, source, root / f"{source}.zarr")
    return city


@pytest.fixture(scope="session")
def tiny_urban(tiny_city, tmp_path_factory) -> Path:
    """A folder with the tiny city's night lights and urban label aligned as a real city's would be."""
    root = tmp_path_factory.mktemp("urban")
    align_tiny(tiny_city, root, "viirs", "urban_labels")
    return root


@pytest.fixture(scope="session")
def tiny_aligned(tiny_city, tmp_path_factory) -> Path:
    """The tiny city aligned and tiled as `snakemake aligned` lays it out (resources/align/tiny/<source>.zarr,
    resources/tiles/tiny/<model>.parquet, demo preset, seed 0), made in-process without Snakemake."""
    from urbaneo.align import ALIGNERS
    from urbaneo.presets import TILES
    from urbaneo.tiles import make_tiles

    root = tmp_path_factory.mktemp("aligned")
    aligned = root / "resources/align/tiny"
    aligned.mkdir(parents=True)
    sources = [k for k in _TINY["inputs"] if k in ALIGNERS]
    city = align_tiny(tiny_city, aligned, *sources)
    for model, spec in TILES.items():
        make_tiles(city, model, "demo", 0, aligned / f"{spec['source']}.zarr", root / f"resources/tiles/tiny/{model}.parquet")
    return root


@pytest.fixture(scope="session")
def real_data() -> Path:
    """tests/data/real: small real files (or crops of them), each folder with its SOURCE.txt and licence."""
    path = REPO / "tests" / "data" / "real"
    if not path.is_dir():
        raise FileNotFoundError(f"real test data missing: {path} (it is part of the repository)")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """`snakemake all` on the tiny generated city, locally, once per session (read-only for tests)."""
    from snakemake_runs import run_all_on_tiny

    return run_all_on_tiny(tmp_path_factory.mktemp("run1") / "wf")
