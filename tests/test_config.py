"""The config contract: schemas with defaults, one-line errors naming file and key, product requirements."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import REPO
from urbaneo.config import (
    PRODUCT_INPUTS,
    PRODUCTS,
    aoi_bounds,
    check_inputs,
    load_cities,
    load_city,
    load_config,
    missing_inputs,
)
from urbaneo.errors import InputError


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def real_inputs(root, **overrides):
    """Inputs of a non-synthetic city whose files exist under root/data/."""
    inputs = {key: f"data/{key}/*" for key in ("landsat", "gf2", "viirs", "par", "osm", "npp_reference",
                                                "lcz_labels", "urban_labels", "soil", "species", "population")}
    inputs["stations"] = "data/stations"
    for key, pattern in inputs.items():
        folder = root / ("data/stations" if key == "stations" else f"data/{key}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.bin").write_bytes(key.encode())
    inputs.update(overrides)
    return {k: v for k, v in inputs.items() if v is not None}


# --- valid files ---------------------------------------------------------------------------------

def test_repo_config_and_cities_load_with_defaults():
    config = load_config(REPO / "config/config.yaml", where="config/config.yaml")
    assert config["cities"] == ["demo"] and config["run"] == "demo" and config["preset"] == "demo"
    cities = load_cities({**config, "cities": ["demo", "tiny"]}, root=REPO)
    demo, tiny = cities["demo"], cities["tiny"]
    assert demo.path == "config/cities/demo.yaml"
    assert aoi_bounds(demo) == (118.70, 32.00, 118.78, 32.07)
    assert demo["region_buffer_km"] == 30 and demo["years"] == [2019, 2020, 2021]
    assert demo["synthetic"] == {"seed": 0, "profile": "demo"}
    assert demo["hemisphere"] == "north"  # derived from the AOI latitude
    # tiny: ~1.5 km square inside the demo AOI
    lon0, lat0, lon1, lat1 = aoi_bounds(tiny)
    assert 118.70 <= lon0 < lon1 <= 118.78 and 32.00 <= lat0 < lat1 <= 32.07
    assert 1.3 < (lon1 - lon0) * 94.4 < 1.7 and 1.3 < (lat1 - lat0) * 111.0 < 1.7
    assert tiny["synthetic"] == {"seed": 1, "profile": "tiny"} and tiny["region_buffer_km"] == 19
    for city in cities.values():  # every product is makeable from a generated city
        assert set(city["inputs"]) == {k for keys in PRODUCT_INPUTS.values() for k in keys}
        assert all(missing_inputs(city, product) == [] for product in PRODUCTS)


def test_config_defaults_are_filled_and_input_untouched():
    given = {"cities": ["tiny"]}
    config = load_config(given)
    assert config == {"cities": ["tiny"], "run": "demo", "preset": "demo", "seed": 0,
                      "cities_dir": "config/cities", "threads": 2, "gpus": 1,
                      "dask": {"scheduler": None, "block": 2048, "workers": 2},
                      "max_epochs": None, "weights": {"vgg16": None, "mae": None, "swin_v2": None},
                      "lcz_pure_share": 0.9, "batch": None, "gpu_hour_price": 1.58,
                      "batches_dir": "config/batches",
                      "vegplan": {"budget_cny": None, "budget_share": 0.05, "maintenance_cny_yr": None,
                                  "max_species_share": 0.25, "min_shannon": 1.5, "carbon_price_cny_t": 30,
                                  "weights": {"csp": 0.3, "bi": 0.25, "esv": 0.15, "ic": 0.1, "cer": 0.2}}}
    assert given == {"cities": ["tiny"]}


def test_batch_sets_cities_and_run(tmp_path):
    config = load_config({"batch": "example"}, root=REPO)
    assert config["cities"] == ["demo", "tiny"] and config["run"] == "example"
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches/east.yaml").write_text("cities: [tiny]\nrun: east-2026\n")
    config = load_config({"batch": "east", "batches_dir": "batches", "run": "ignored"}, root=tmp_path)
    assert config["cities"] == ["tiny"] and config["run"] == "east-2026"
    with pytest.raises(InputError, match=r"^batches/west.yaml: batch file not found \(batch 'west' is named in cfg\)$"):
        load_config({"batch": "west", "batches_dir": "batches"}, root=tmp_path, where="cfg")
    (tmp_path / "batches/bad.yaml").write_text("cities: []\n")
    with pytest.raises(InputError, match=r"^batches/bad.yaml: cities: "):
        load_config({"batch": "bad", "batches_dir": "batches"}, root=tmp_path)


def test_city_defaults(tmp_path, write_city):
    path = write_city(tmp_path, "south", aoi=[18.3, -34.1, 18.5, -33.9], region_buffer_km=None,
                      synthetic={"seed": 4})
    city = load_city(path, root=tmp_path)
    assert city["region_buffer_km"] == 25
    assert city["hemisphere"] == "south"
    assert city["synthetic"] == {"seed": 4, "profile": "demo"}


def test_geojson_aoi(tmp_path, write_city):
    polygon = {"type": "Polygon", "coordinates": [[[2.2, 48.8], [2.4, 48.8], [2.4, 48.9], [2.2, 48.8]]]}
    (tmp_path / "aoi.geojson").write_text(json.dumps(
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": polygon}]}))
    city = load_city(write_city(tmp_path, "paris", aoi="aoi.geojson"), root=tmp_path)
    assert aoi_bounds(city) == (2.2, 48.8, 2.4, 48.9)


# --- one-line errors -----------------------------------------------------------------------------

def test_wrong_top_level_key():
    with pytest.raises(InputError) as err:
        load_config({"cities": ["demo"], "colour": "red"}, where="config/config.yaml")
    assert one_line(err) == "config/config.yaml: colour: additional property not allowed"


def test_wrong_type_names_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text("cities: [demo]\nseed: abc\n")
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "c.yaml", where="c.yaml")
    assert one_line(err) == 'c.yaml: seed: expected integer, got "abc"'


def test_wrong_key_under_inputs(tmp_path, write_city):
    inputs = yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())["inputs"]
    inputs["landsatt"] = inputs.pop("landsat")
    path = write_city(tmp_path, "x", inputs=inputs)
    with pytest.raises(InputError) as err:
        load_city(path, root=tmp_path)
    assert one_line(err).startswith("config/cities/x.yaml: inputs.landsatt: additional property not allowed")
    assert "did you mean 'landsat'" in str(err.value)


def test_city_without_aoi(tmp_path, write_city):
    with pytest.raises(InputError) as err:
        load_city(write_city(tmp_path, "x", aoi=None), root=tmp_path)
    assert one_line(err) == "config/cities/x.yaml: aoi: required key missing"


@pytest.mark.parametrize("aoi, expected", [
    ([118.8, 32.0, 118.7, 32.1], "aoi: lon_min 118.8 must be less than lon_max 118.7"),
    ([118.7, 32.1, 118.8, 32.1], "aoi: lat_min 32.1 must be less than lat_max 32.1"),
    ([118.7, 95.0, 118.8, 89.0], "aoi.1: 95.0 is greater than the maximum of 90"),
    ([118.7, 32.0, 118.8], "aoi: [118.7, 32.0, 118.8] is too short"),
])
def test_bad_bbox(tmp_path, write_city, aoi, expected):
    with pytest.raises(InputError) as err:
        load_city(write_city(tmp_path, "x", aoi=aoi), root=tmp_path)
    assert one_line(err) == f"config/cities/x.yaml: {expected}"


def test_missing_geojson(tmp_path, write_city):
    with pytest.raises(InputError) as err:
        load_city(write_city(tmp_path, "x", aoi="aoi/nowhere.geojson"), root=tmp_path)
    assert one_line(err) == "config/cities/x.yaml: aoi: GeoJSON file not found: aoi/nowhere.geojson"


def test_geojson_without_polygon(tmp_path, write_city):
    (tmp_path / "points.geojson").write_text(json.dumps({"type": "Point", "coordinates": [2.3, 48.8]}))
    with pytest.raises(InputError) as err:
        load_city(write_city(tmp_path, "x", aoi="points.geojson"), root=tmp_path)
    assert one_line(err).startswith("points.geojson: no Polygon or MultiPolygon geometry")


def test_name_must_match_file(tmp_path, write_city):
    path = write_city(tmp_path, "x")
    (tmp_path / "config/cities/y.yaml").write_text((tmp_path / path).read_text())
    with pytest.raises(InputError) as err:
        load_city("config/cities/y.yaml", root=tmp_path)
    assert one_line(err) == "config/cities/y.yaml: name: 'x' must equal the file name 'y'"


def test_missing_city_file(tmp_path):
    with pytest.raises(InputError) as err:
        load_cities(load_config({"cities": ["atlantis"]}), root=tmp_path)
    assert one_line(err) == "config/cities/atlantis.yaml: city file not found (city 'atlantis' is listed in cities)"


def test_invalid_yaml(tmp_path):
    (tmp_path / "c.yaml").write_text("cities: [demo\n")
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "c.yaml", where="c.yaml")
    assert one_line(err).startswith("c.yaml: invalid YAML (line ")


# --- product requirements ------------------------------------------------------------------------

def test_real_city_glob_matching_nothing(tmp_path, write_city):
    inputs = real_inputs(tmp_path, gf2="data/x/*.tif")
    city = load_city(write_city(tmp_path, "x", synthetic=None, inputs=inputs), root=tmp_path)
    check_inputs(city, "npp")  # unaffected product
    with pytest.raises(InputError) as err:
        check_inputs(city, "lcz")
    assert one_line(err) == ("config/cities/x.yaml: city 'x' cannot make product 'lcz': "
                             "input 'gf2' matches no file: data/x/*.tif")


def test_input_not_configured(tmp_path, write_city):
    inputs = real_inputs(tmp_path, lcz_labels=None)
    city = load_city(write_city(tmp_path, "x", synthetic=None, inputs=inputs), root=tmp_path)
    with pytest.raises(InputError) as err:
        check_inputs(city, "lcz")
    assert one_line(err) == ("config/cities/x.yaml: city 'x' cannot make product 'lcz': "
                             "input 'lcz_labels' is not configured")


def test_synthetic_city_checks_keys_only(tmp_path, write_city):
    inputs = yaml.safe_load((REPO / "config/cities/tiny.yaml").read_text())["inputs"]
    del inputs["npp_reference"]
    city = load_city(write_city(tmp_path, "x", inputs=inputs), root=tmp_path)
    check_inputs(city, "vegplan")  # nothing generated yet, and that is fine
    assert missing_inputs(city, "npp") == ["input 'npp_reference' is not configured"]


def test_product_inputs_are_city_schema_keys():
    schema = yaml.safe_load((REPO / "src/urbaneo/schemas/city.schema.yaml").read_text())
    keys = set(schema["properties"]["inputs"]["properties"])
    assert set(PRODUCT_INPUTS) == set(PRODUCTS)
    assert {k for needed in PRODUCT_INPUTS.values() for k in needed} <= keys
