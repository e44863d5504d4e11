"""Synthetic Landsat 8 C2 L1 writer: round trip through the real reader code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from urbaneo.errors import InputError
from urbaneo.readers import landsat as ls
from urbaneo.sun import earth_sun_distance
from urbaneo.synth.landsat import l1_product_id, write_l1_scene

H, W = 40, 50
PID = "LC08_L1TP_120038_20200415_20200423_02_T1"
REAL_MTLS = Path(__file__).resolve().parent / "data" / "real" / "landsat-mtl-collection2"


def _scene():
    """Known reflectance and masks: a fill collar on the left, random clouds, shadows, water."""
    rng = np.random.default_rng(42)
    masks = dict(
        fill=np.zeros((H, W), bool),
        cloud=rng.random((H, W)) < 0.15,
        shadow=rng.random((H, W)) < 0.05,
        cirrus=rng.random((H, W)) < 0.05,
        snow=np.zeros((H, W), bool),
        water=rng.random((H, W)) < 0.1,
    )
    masks["fill"][:, :4] = True
    toa = {}
    for i, band in enumerate(("B2", "B3", "B4", "B5")):
        rho = rng.uniform(-0.05, 0.9 + 0.1 * i, (H, W)).astype(np.float32)
        rho[masks["fill"]] = np.nan
        toa[band] = rho
    return toa, masks


def _write(out_dir, toa, qa, **kw):
    args = dict(
        wrs_path=120, wrs_row=38, acquired=dt.date(2020, 4, 15), processed=dt.date(2020, 4, 23),
        toa=toa, qa=qa, transform=Affine(30, 0, 399990, 0, -30, 3500010), epsg=32650,
        sun_azimuth=128.41377962, sun_elevation=58.31204517, cloud_cover=15.04,
    )
    return write_l1_scene(out_dir, **{**args, **kw})


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    toa, masks = _scene()
    qa = ls.encode_qa_pixel(**masks)
    out = _write(tmp_path_factory.mktemp("landsat"), toa, qa)
    return out, toa, masks, qa


def test_layout_and_product_id(scene):
    out, *_ = scene
    assert out.name == PID == l1_product_id(wrs_path=120, wrs_row=38, acquired=dt.date(2020, 4, 15),
                                            processed=dt.date(2020, 4, 23))
    suffixes = ["B2.TIF", "B3.TIF", "B4.TIF", "B5.TIF", "MTL.json", "MTL.txt", "QA_PIXEL.TIF"]
    assert sorted(p.name for p in out.iterdir()) == [f"{PID}_{s}" for s in suffixes]
    p = ls.parse_product_id(out.name)
    assert (p["path"], p["row"], p["level"], p["collection"], p["tier"]) == (120, 38, 1, 2, "T1")
    assert not [q for q in out.parent.iterdir() if q.name.startswith(".")]  # no temp leftovers


def test_mtl_txt_json_and_fields(scene):
    out, *_ = scene
    mtl = ls.read_mtl(out / f"{PID}_MTL.txt")
    assert mtl == ls.read_mtl(out / f"{PID}_MTL.json")
    pc, ia, pa = mtl["PRODUCT_CONTENTS"], mtl["IMAGE_ATTRIBUTES"], mtl["PROJECTION_ATTRIBUTES"]
    assert pc["LANDSAT_PRODUCT_ID"] == PID and pc["COLLECTION_NUMBER"] == 2
    assert pc["FILE_NAME_BAND_4"] == f"{PID}_B4.TIF" and pc["FILE_NAME_QUALITY_L1_PIXEL"] == f"{PID}_QA_PIXEL.TIF"
    assert "FILE_NAME_BAND_1" not in pc
    assert (ia["WRS_PATH"], ia["WRS_ROW"], ia["DATE_ACQUIRED"]) == (120, 38, "2020-04-15")
    assert (ia["CLOUD_COVER"], ia["SUN_ELEVATION"], ia["SCENE_CENTER_TIME"]) == (15.04, 58.31204517, "02:45:12.1234560Z")
    assert ia["EARTH_SUN_DISTANCE"] == pytest.approx(1.0033, abs=2e-4)
    assert (pa["UTM_ZONE"], pa["GRID_CELL_SIZE_REFLECTIVE"], pa["REFLECTIVE_LINES"], pa["REFLECTIVE_SAMPLES"]) == (50, 30.0, H, W)
    # Corners are pixel centres, as in USGS MTLs.
    assert (pa["CORNER_UL_PROJECTION_X_PRODUCT"], pa["CORNER_UL_PROJECTION_Y_PRODUCT"]) == (400005.0, 3499995.0)
    assert (pa["CORNER_LR_PROJECTION_X_PRODUCT"], pa["CORNER_LR_PROJECTION_Y_PRODUCT"]) == (401475.0, 3498825.0)
    assert 31.6 < pa["CORNER_UL_LAT_PRODUCT"] < 31.7 and 115.9 < pa["CORNER_UL_LON_PRODUCT"] < 116.0
    assert mtl["LEVEL1_PROCESSING_RECORD"]["DATE_PRODUCT_GENERATED"] == "2020-04-23T00:00:00Z"
    # Radiance constants are consistent with reflectance: L / rho' = ESUN / (pi d^2) for every band.
    rr = mtl["LEVEL1_RADIOMETRIC_RESCALING"]
    for n in (2, 3, 4, 5):
        ratio = rr[f"RADIANCE_ADD_BAND_{n}"] / rr[f"REFLECTANCE_ADD_BAND_{n}"]
        assert rr[f"RADIANCE_MULT_BAND_{n}"] / rr[f"REFLECTANCE_MULT_BAND_{n}"] == pytest.approx(ratio, rel=1e-4)
        assert mtl["LEVEL1_MIN_MAX_RADIANCE"][f"RADIANCE_MAXIMUM_BAND_{n}"] == pytest.approx(1.2107 * ratio, rel=1e-6)
    assert "RADIANCE_MULT_BAND_1" not in rr


def test_mtl_text_format_like_usgs(scene):
    out, *_ = scene
    text = (out / f"{PID}_MTL.txt").read_text()
    assert text.startswith("GROUP = LANDSAT_METADATA_FILE\n  GROUP = PRODUCT_CONTENTS\n")
    assert text.endswith("END_GROUP = LANDSAT_METADATA_FILE\nEND\n")
    for line in ("    COLLECTION_NUMBER = 02\n", "    REFLECTANCE_MULT_BAND_4 = 2.0000E-05\n",
                 "    REFLECTANCE_ADD_BAND_4 = -0.100000\n", "    DATE_ACQUIRED = 2020-04-15\n",
                 '    SPACECRAFT_ID = "LANDSAT_8"\n', "    GRID_CELL_SIZE_REFLECTIVE = 30.00\n"):
        assert line in text
    js = (out / f"{PID}_MTL.json").read_text()
    assert js.startswith('{"LANDSAT_METADATA_FILE": {"PRODUCT_CONTENTS": {') and '"COLLECTION_NUMBER": "02"' in js


def test_toa_and_qa_round_trip(scene):
    out, toa, masks, qa = scene
    mtl = ls.read_mtl(out / f"{PID}_MTL.json")
    fill = masks["fill"]
    for band, expected in toa.items():
        with rasterio.open(out / f"{PID}_{band}.TIF") as src:
            assert (src.dtypes[0], src.nodata, src.crs.to_epsg()) == ("uint16", 0, 32650)
            assert src.transform == Affine(30, 0, 399990, 0, -30, 3500010)
            assert src.profile["tiled"] and src.profile["compress"] == "deflate"
            dn = src.read(1)
        assert (dn == 0).tolist() == fill.tolist()
        rho = ls.toa_reflectance(dn, *ls.level1_reflectance_constants(mtl, band))
        assert np.isnan(rho).tolist() == fill.tolist()
        err = np.abs(rho[~fill] - expected[~fill]).max()
        assert err < 1e-4, (band, err)
    with rasterio.open(out / f"{PID}_QA_PIXEL.TIF") as src:
        assert (src.dtypes[0], src.nodata) == ("uint16", 1)
        back = src.read(1)
    np.testing.assert_array_equal(back, qa)
    dec = ls.decode_qa_pixel(back)
    for k, m in masks.items():
        np.testing.assert_array_equal(dec[k], m if k == "fill" else m & ~fill, err_msg=k)


def test_byte_identical_rewrite(tmp_path):
    toa, masks = _scene()
    qa = ls.encode_qa_pixel(**masks)
    a, b = _write(tmp_path / "a", toa, qa), _write(tmp_path / "b", toa, qa)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # Writing again over an existing scene replaces it in place.
    assert _write(tmp_path / "a", toa, qa) == a and sorted(p.name for p in a.iterdir()) == names


def test_saturation_and_clipping(tmp_path):
    toa, masks = _scene()
    toa["B5"][5, 10], toa["B5"][6, 10] = 5.0, -1.0  # beyond the 1..65535 DN range
    out = _write(tmp_path, toa, ls.encode_qa_pixel(**masks))
    with rasterio.open(out / f"{PID}_B5.TIF") as src:
        dn = src.read(1)
    assert (dn[5, 10], dn[6, 10]) == (65535, 1)
    attrs = ls.read_mtl(out / f"{PID}_MTL.txt")["IMAGE_ATTRIBUTES"]
    assert (attrs["SATURATION_BAND_5"], attrs["SATURATION_BAND_4"]) == ("Y", "N")


def test_corrupt_mtl_constants_raise_naming_file(scene, tmp_path):
    out, *_ = scene
    text = (out / f"{PID}_MTL.txt").read_text()
    bad = tmp_path / f"{PID}_MTL.txt"
    bad.write_text(text.replace("    REFLECTANCE_MULT_BAND_4 = 2.0000E-05\n", ""))
    mtl = ls.read_mtl(bad)
    ls.level1_reflectance_constants(mtl, "B3")  # other bands still fine
    with pytest.raises(InputError, match="REFLECTANCE_MULT_BAND_4") as err:
        ls.level1_reflectance_constants(mtl, "B4")
    assert str(err.value).startswith(f"{bad}: ")
    bad.write_text(text.replace("REFLECTANCE_ADD_BAND_2 = -0.100000", "REFLECTANCE_ADD_BAND_2 = oops"))
    with pytest.raises(InputError, match=f"{PID}_MTL.txt: .*REFLECTANCE_ADD_BAND_2 = 'oops' is not a number"):
        ls.level1_reflectance_constants(ls.read_mtl(bad), 2)
    bad.write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(InputError, match=f"{PID}_MTL.txt: "):
        ls.read_mtl(bad)


def test_bad_input_writes_nothing(tmp_path):
    toa, masks = _scene()
    qa = ls.encode_qa_pixel(**masks)
    toa["B3"][0, 20] = np.nan  # NaN outside the QA fill
    with pytest.raises(ValueError, match="B3.*1 pixels differ"):
        _write(tmp_path, toa, qa)
    with pytest.raises(ValueError, match="UTM north"):
        _write(tmp_path, _scene()[0], qa, epsg=4326)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", sorted(REAL_MTLS.glob("*_MTL.txt")), ids=lambda p: p.name[:40])
def test_earth_sun_distance_matches_usgs(path):
    attrs = ls.read_mtl(path)["IMAGE_ATTRIBUTES"]
    when = dt.datetime.fromisoformat(f"{attrs['DATE_ACQUIRED']}T{attrs['SCENE_CENTER_TIME'][:15]}")
    assert earth_sun_distance(when) == pytest.approx(attrs["EARTH_SUN_DISTANCE"], abs=1e-4)
