"""Landsat metadata reader, checked against real USGS files in tests/data/real."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio

from urbaneo.errors import InputError
from urbaneo.readers import landsat as ls

REAL = Path(__file__).resolve().parent / "data" / "real"
MTL_DIR = REAL / "landsat-mtl-collection2"
AMAZON = REAL / "landsat8-c2l2-amazon-riotilerpds"
AMAZON_ID = "LC08_L2SP_001062_20201031_20201106_02_T2"
L1_MTL = MTL_DIR / "mtltest_v2_LC08_L1TP_188018_20200927_20201005_02_T1_MTL.txt"



# --- product ids -----------------------------------------------------------------------------


def test_parse_product_id_c2_l1():
    p = ls.parse_product_id("LC08_L1TP_120038_20200415_20200423_02_T1")
    assert p == {
        "product_id": "LC08_L1TP_120038_20200415_20200423_02_T1",
        "spacecraft": "LC08",
        "satellite": 8,
        "processing_level": "L1TP",
        "level": 1,
        "path": 120,
        "row": 38,
        "acquired": dt.date(2020, 4, 15),
        "processed": dt.date(2020, 4, 23),
        "collection": 2,
        "tier": "T1",
    }


@pytest.mark.parametrize(
    "name, expect",
    [
        (f"{AMAZON_ID}_SR_B4.TIF", dict(level=2, processing_level="L2SP", path=1, row=62, tier="T2")),
        ("LC08_L1TP_120038_20170415_20170501_01_T1", dict(collection=1, acquired=dt.date(2017, 4, 15))),
        ("/some/dir/LE07_L1GT_044034_20030411_20200915_02_RT_MTL.txt", dict(spacecraft="LE07", tier="RT")),
        ("LT05_L2SR_014032_19950707_20200912_02_T1", dict(satellite=5, level=2)),
        ("LC09_L1GS_010010_20220101_20220102_02_T2", dict(spacecraft="LC09", processing_level="L1GS")),
    ],
)
def test_parse_product_id_variants(name, expect):
    p = ls.parse_product_id(name)
    assert {k: p[k] for k in expect} == expect


@pytest.mark.parametrize(
    "name",
    [
        "S2A_MSIL2A_20200415T030541_N0214_R075_T50RKU_20200415T070206",
        "LC08_L1TP_120038_20200415_20200423_03_T1",  # no collection 3
        "LC08_L1TP_120038_20201345_20201350_02_T1",  # month 13
        "LC08_L1TP_120038_20200423_20200415_02_T1",  # processed before acquired
        "LC08_L1TP_120038_20200415_20200423_02_T1X",
        "LC81200382020106LGN00",  # a scene id, not a product id
    ],
)
def test_parse_product_id_rejects(name):
    with pytest.raises(InputError, match="not a Landsat product id"):
        ls.parse_product_id(name)


# --- MTL -------------------------------------------------------------------------------------


def test_real_l2_mtl_txt_and_json_agree():
    txt = ls.read_mtl(AMAZON / f"{AMAZON_ID}_MTL.txt")
    js = ls.read_mtl(AMAZON / f"{AMAZON_ID}_MTL.json")
    shared = set(txt) & set(js)
    assert "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS" in shared and "LEVEL1_RADIOMETRIC_RESCALING" in shared
    assert {g: txt[g] for g in shared} == {g: js[g] for g in shared}
    assert txt == js  # in fact every group is shared
    attrs = txt["IMAGE_ATTRIBUTES"]
    assert attrs["WRS_PATH"] == 1 and attrs["CLOUD_COVER"] == 99.94
    assert attrs["DATE_ACQUIRED"] == "2020-10-31"  # dates stay strings
    assert attrs["SCENE_CENTER_TIME"] == "14:31:47.8083990Z"
    assert txt["PRODUCT_CONTENTS"]["COLLECTION_NUMBER"] == 2
    assert txt["PRODUCT_CONTENTS"]["LANDSAT_PRODUCT_ID"] == AMAZON_ID
    assert ls.level2_reflectance_constants(js, "B4") == (2.75e-05, -0.2)


@pytest.mark.parametrize("path", sorted(MTL_DIR.glob("*_MTL.txt")), ids=lambda p: p.name[:40])
def test_real_c2_mtls_level1_constants(path):
    mtl = ls.read_mtl(path)
    mult, add, elev = ls.level1_reflectance_constants(mtl, 4)
    assert (mult, add) == (2e-05, -0.1)
    assert elev == mtl["IMAGE_ATTRIBUTES"]["SUN_ELEVATION"] and 0 < elev < 90


def test_real_l1_constants_and_toa():
    mtl = ls.read_mtl(L1_MTL)
    assert ls.level1_reflectance_constants(mtl, "B5") == (2e-05, -0.1, 27.52435766)
    rho = ls.toa_reflectance(np.array([0, 1, 10000, 65535], np.uint16), 2e-05, -0.1, 27.52435766)
    sin = np.sin(np.radians(27.52435766))
    assert np.isnan(rho[0])
    np.testing.assert_allclose(rho[1:], np.array([-0.09998, 0.1, 1.2107]) / sin, rtol=1e-6)
    # An L1 MTL has no Level-2 scaling: the error names the file and the key.
    with pytest.raises(InputError, match=r"mtltest_v2.*LEVEL2_SURFACE_REFLECTANCE_PARAMETERS.*MULT_BAND_4"):
        ls.level2_reflectance_constants(mtl, 4)


def test_collection1_group_names(tmp_path):
    # A trimmed Collection 1 MTL: other top group and group names, same keys.
    p = tmp_path / "LC08_L1TP_120038_20170415_20170501_01_T1_MTL.txt"
    p.write_text(
        "GROUP = L1_METADATA_FILE\n  GROUP = IMAGE_ATTRIBUTES\n    SUN_ELEVATION = 55.5\n  END_GROUP = IMAGE_ATTRIBUTES\n"
        "  GROUP = RADIOMETRIC_RESCALING\n    REFLECTANCE_MULT_BAND_4 = 2.0000E-05\n"
        "    REFLECTANCE_ADD_BAND_4 = -0.100000\n  END_GROUP = RADIOMETRIC_RESCALING\n"
        "END_GROUP = L1_METADATA_FILE\nEND\n"
    )
    assert ls.level1_reflectance_constants(ls.read_mtl(p), "B4") == (2e-05, -0.1, 55.5)
    with pytest.raises(InputError, match=r"_MTL.txt: missing RADIOMETRIC_RESCALING REFLECTANCE_MULT_BAND_3"):
        ls.level1_reflectance_constants(ls.read_mtl(p), 3)


@pytest.mark.parametrize(
    "text, problem",
    [
        (None, "not found"),
        ("", "empty"),
        ("  \n", "empty"),
        ("GROUP = A\n  X = 1\n", "no END"),
        ("GROUP = A\n  X = 1\nEND_GROUP = B\nEND\n", "does not close"),
        ("GROUP = A\n  this is not odl\nEND_GROUP = A\nEND\n", "line 2"),
        ('{"LANDSAT_METADATA_FILE": {"A": ', "not valid JSON"),
        ('{"LANDSAT_METADATA_FILE": {"A": {"X": [1]}}}', "unexpected JSON value"),
        ("<?xml version='1.0'?><LANDSAT_METADATA_FILE/>", "XML"),
    ],
)
def test_bad_mtl_raises_naming_file(tmp_path, text, problem):
    p = tmp_path / "scene_MTL.txt"
    if text is not None:
        p.write_text(text)
    with pytest.raises(InputError, match=problem) as err:
        ls.read_mtl(p)
    assert str(err.value).startswith(str(p) + ": ") and "\n" not in str(err.value)


def test_night_scene_rejected(tmp_path):
    p = tmp_path / "night_MTL.txt"
    p.write_text(
        "GROUP = LANDSAT_METADATA_FILE\n GROUP = IMAGE_ATTRIBUTES\n  SUN_ELEVATION = -12.5\n END_GROUP = IMAGE_ATTRIBUTES\n"
        " GROUP = LEVEL1_RADIOMETRIC_RESCALING\n  REFLECTANCE_MULT_BAND_2 = 2.0E-05\n  REFLECTANCE_ADD_BAND_2 = -0.1\n"
        " END_GROUP = LEVEL1_RADIOMETRIC_RESCALING\nEND_GROUP = LANDSAT_METADATA_FILE\nEND\n"
    )
    with pytest.raises(InputError, match="night_MTL.txt: SUN_ELEVATION -12.5"):
        ls.level1_reflectance_constants(ls.read_mtl(p), 2)


# --- QA --------------------------------------------------------------------------------------


def test_real_qa_pixel_cloud_fraction():
    with rasterio.open(AMAZON / f"{AMAZON_ID}_QA_PIXEL.TIF") as src:
        qa = src.read(1)
    m = ls.decode_qa_pixel(qa)
    # SOURCE.txt: cloud bit set on 69 % of all pixels (the 31 % fill collar included).
    assert m["cloud"].mean() == pytest.approx(0.693, abs=0.001)
    assert m["fill"].mean() == pytest.approx(0.307, abs=0.001)
    # Over the image area this matches the scene's CLOUD_COVER = 99.94 %.
    mtl = ls.read_mtl(AMAZON / f"{AMAZON_ID}_MTL.txt")
    assert 100 * m["cloud"][~m["fill"]].mean() == pytest.approx(mtl["IMAGE_ATTRIBUTES"]["CLOUD_COVER"], abs=0.01)
    assert not m["clear"][m["cloud"] | m["fill"]].any()
    # Our encoder reproduces every code USGS wrote (fill, cloud, cloud+cirrus, clear shadow).
    codes = np.unique(qa)
    assert codes.tolist() == [1, 22280, 23888, 55052]
    d = ls.decode_qa_pixel(codes)
    again = ls.encode_qa_pixel(d["fill"], d["cloud"], d["shadow"], d["cirrus"], d["snow"], d["water"], d["dilated_cloud"])
    assert again.tolist() == codes.tolist()


def test_encode_qa_pixel_known_values():
    f, t = False, True
    assert ls.encode_qa_pixel(f, f, f, f, f, f).item() == 21824  # clear land, all confidences low
    assert ls.encode_qa_pixel(f, f, f, f, f, t).item() == 21952  # clear water
    assert ls.encode_qa_pixel(t, t, t, t, t, t).item() == 1  # fill: bit 0 only
    assert ls.encode_qa_pixel(f, f, f, f, t, f).item() == 21824 | 1 << 5 | 3 << 12  # snow, high snow conf
    # Dilated cloud clears the clear bit but is not cloud.
    code = ls.encode_qa_pixel(f, f, f, f, f, f, dilated_cloud=t).item()
    assert code == 21824 - 64 + 2
    dec = ls.decode_qa_pixel(code)
    assert dec["dilated_cloud"] and not dec["cloud"] and not dec["clear"]


def test_qa_pixel_round_trip_random():
    rng = np.random.default_rng(1)
    masks = {k: rng.random((30, 20)) < 0.2 for k in ("fill", "cloud", "shadow", "cirrus", "snow", "water", "dilated_cloud")}
    qa = ls.encode_qa_pixel(**masks)
    assert qa.dtype == np.uint16
    dec = ls.decode_qa_pixel(qa)
    fill = masks["fill"]
    np.testing.assert_array_equal(dec["fill"], fill)
    for k in ("cloud", "shadow", "cirrus", "snow", "water", "dilated_cloud"):
        np.testing.assert_array_equal(dec[k], masks[k] & ~fill, err_msg=k)
    np.testing.assert_array_equal(dec["clear"], ~fill & ~masks["cloud"] & ~masks["dilated_cloud"])
    # Confidence pairs agree with the flags: high where set, low elsewhere.
    conf = ls.qa_bits(qa, ls.QA_CLOUD_CONFIDENCE, 2)
    assert set(np.unique(conf[~fill])) <= {ls.CONFIDENCE_LOW, ls.CONFIDENCE_HIGH}
    np.testing.assert_array_equal(conf[~fill] == ls.CONFIDENCE_HIGH, masks["cloud"][~fill])


def test_decode_bqa_collection1_values():
    # Well-known Landsat 8 C1 BQA values.
    # fill, clear, clear + 1-2 saturated bands, cloud, shadow, snow, cirrus, medium cloud confidence
    bqa = np.array([1, 2720, 2724, 2800, 2976, 3744, 6816, 2752], np.uint16)
    d = ls.decode_bqa(bqa)
    assert d["fill"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert d["clear"].tolist() == [0, 1, 1, 0, 1, 1, 1, 1]
    assert d["saturated"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert d["cloud"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]  # 2800: cloud bit + high confidence
    assert d["shadow"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert d["snow"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0]
    assert d["cirrus"].tolist() == [0, 0, 0, 0, 0, 0, 1, 0]
    # High cloud confidence alone (bits 5-6 = 11, no cloud bit) also counts as cloud.
    assert ls.decode_bqa(np.uint16(2720 | 3 << 5))["cloud"]
