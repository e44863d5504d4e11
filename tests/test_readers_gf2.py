"""GF-2 / 4-band VHR reader: the demo city's GF-2 scene, the real NAIP stand-in, RPC images, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio import features
from rasterio.rpc import RPC

from urbaneo.errors import InputError
from urbaneo.grid import Grid
from urbaneo.readers.gf2 import BANDS, describe, read_vhr
from urbaneo.synth.world import build_world

# the tiny city's LCZ label grid (100 m) and the same extent at 5 m
LCZ_GRID = Grid(32650, 664500.0, 3546800.0, 100.0, 20, 20)
FINE_GRID = LCZ_GRID.with_res(5.0)
# the NAIP file's own grid (EPSG:26914, 5 m): tests/data/real holds the central 256 x 256 pixels of the 934 x 723
# file described in its SOURCE.txt (columns 339..594, rows 233..488); its pixel statistics below are the crop's
NAIP_GRID = Grid(26914, 487594.0, 5208081.0, 5.0, 256, 256)


@pytest.fixture(scope="module")
def gf2_file(tiny_city):
    (path,) = sorted((tiny_city / "gf2").glob("GF2_*.tif"))
    return path


@pytest.fixture(scope="module")
def naip(real_data):
    return real_data / "naip-4band-rgbn-opengeos" / "m_4709963_se_14_1_20200831.tif"


def _ndvi(da):
    red, nir = da.sel(band="red").values, da.sel(band="nir").values
    return (nir - red) / (nir + red)


def test_demo_reflectance_separates_trees_and_water(gf2_file, tiny_city):
    da = read_vhr(gf2_file, FINE_GRID)
    assert da.dims == ("band", "y", "x") and da.dtype == np.float32
    assert list(da.band.values) == list(BANDS)
    assert da.attrs["sensor"] == "GF2/PMS1" and da.attrs["resampling"] == "bilinear"
    assert da.attrs["date"] == "2021-10-12"
    with rasterio.open(tiny_city / "labels" / "lcz_2021.tif") as src:
        lcz = np.kron(src.read(1), np.ones((20, 20), np.uint8))  # 100 m labels onto the 5 m pixels
    m = json.loads((tiny_city / "manifest.json").read_text())
    world = build_world(tuple(m["aoi"]), m["years"], seed=m["seed"], profile=m["profile"],
                        region_buffer_km=m["region_buffer_km"])
    # water from the world's polygons at 5 m: the 100 m LCZ water cells of a narrow river are half bank
    water = features.rasterize(((g, 1) for g, _ in world.water), out_shape=FINE_GRID.shape,
                               transform=FINE_GRID.transform, fill=0, dtype="uint8")
    ndvi = _ndvi(da)
    assert np.nanmedian(ndvi[lcz == 11]) > 0.4  # dense trees
    assert water.sum() > 1000 and np.nanmedian(ndvi[water == 1]) < -0.2  # water (bridges aside)
    rho = da.values[:, lcz == 11]
    assert 0.0 < np.nanmin(rho) and np.nanmax(rho) < 1.0


def test_demo_units_and_averaging(gf2_file):
    dn = read_vhr(gf2_file, LCZ_GRID, units="dn")
    radiance = read_vhr(gf2_file, LCZ_GRID, units="radiance")
    rho = read_vhr(gf2_file, LCZ_GRID)
    assert dn.attrs["resampling"] == "average"  # 100 m grid over a 6 m image
    gain = np.array([0.22, 0.21, 0.19, 0.20], np.float32)[:, None, None]  # the demo's GAIN tags
    np.testing.assert_allclose(radiance.values, dn.values * gain, rtol=1e-5)
    # overriding the gain scales radiance; reflectance follows pi L d^2 / (ESUN sin(elevation))
    doubled = read_vhr(gf2_file, LCZ_GRID, units="radiance", gain=[0.44, 0.42, 0.38, 0.40])
    np.testing.assert_allclose(doubled.values, 2 * radiance.values, rtol=1e-5)
    esun = np.array([1945.0, 1854.0, 1542.0, 1080.0])[:, None, None]
    d, elevation = rho.attrs["earth_sun_distance"], rho.attrs["sun_elevation"]
    expected = np.pi * radiance.values * d**2 / (esun * np.sin(np.radians(elevation)))
    np.testing.assert_allclose(rho.values, expected, rtol=1e-5)
    lower_sun = read_vhr(gf2_file, LCZ_GRID, sun_elevation=30.0)
    ratio = np.sin(np.radians(elevation)) / np.sin(np.radians(30.0))
    np.testing.assert_allclose(lower_sun.values, rho.values * ratio, rtol=1e-5)


def test_demo_describe(gf2_file):
    facts = describe(gf2_file)
    assert facts["kind"] == "vhr" and facts["sensor"] == "GF2/PMS1" and facts["crs"] == "EPSG:32650"
    assert facts["resolution"] == [6.0, 6.0] and facts["date"] == "2021-10-12"
    assert [b["band"] for b in facts["bands"]] == [1, 2, 3, 4]
    assert all(1 <= b["min"] <= b["mean"] <= b["max"] <= 1023 for b in facts["bands"])


def test_naip_rgbn_band_order_and_ndvi(naip):
    da = read_vhr(naip, NAIP_GRID, units="dn", band_order=("red", "green", "blue", "nir"))
    assert list(da.band.values) == ["blue", "green", "red", "nir"]
    with rasterio.open(naip) as src:
        raw = src.read().astype(np.float32)
    np.testing.assert_allclose(da.sel(band="blue").values, raw[2], atol=1e-3)  # file band 3 is blue
    # numpy on the crop: (b4-b1)/(b4+b1) mean 0.143 (SOURCE.txt: 0.138 over the whole file)
    assert abs(float(np.nanmean(_ndvi(da))) - 0.143) < 0.01


def test_naip_reflectance_needs_gains(naip):
    with pytest.raises(InputError, match=r"m_4709963_se_14_1_20200831\.tif: no radiometric gain"):
        read_vhr(naip, NAIP_GRID, band_order=("red", "green", "blue", "nir"))
    # radiance with a configured gain works; reflectance still lacks ESUN, sun and date
    radiance = read_vhr(naip, NAIP_GRID, units="radiance", gain=0.5)
    assert np.nanmax(radiance.values) <= 0.5 * 210  # the crop's largest DN (numpy), 223 in the whole file
    with pytest.raises(InputError, match=r"\.tif: no solar irradiance ESUN"):
        read_vhr(naip, NAIP_GRID, gain=0.5)
    facts = describe(naip)
    assert facts["sensor"] == "unknown" and facts["crs"] == "EPSG:26914" and facts["resolution"] == [5.0, 5.0]
    assert abs(facts["bands"][0]["mean"] - 69.58) < 0.01  # numpy on the crop: band1 mean 69.576 (whole file: 81.37)


def test_calibration_from_the_xml_sidecar(gf2_file, tmp_path):
    bare = tmp_path / gf2_file.name  # the same pixels with no metadata tags
    with rasterio.open(gf2_file) as src:
        profile, dn = src.profile, src.read()
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(dn)
    with pytest.raises(InputError, match=r"MSS1\.tif: no radiometric gain"):
        read_vhr(bare, LCZ_GRID)
    bare.with_suffix(".xml").write_bytes(gf2_file.with_suffix(".xml").read_bytes())
    np.testing.assert_allclose(read_vhr(bare, LCZ_GRID).values, read_vhr(gf2_file, LCZ_GRID).values, rtol=1e-4)
    assert describe(bare)["sensor"] == "GF2/PMS1" and describe(bare)["date"] == "2021-10-12"


def _write_rpc_copy(src_path, dst_path):
    """The same pixels with no geotransform and no CRS, only a first-order RPC model of their lon/lat."""
    with rasterio.open(src_path) as src:
        dn, profile, tags = src.read(), src.profile, src.tags()
        band_tags = [src.tags(i) for i in range(1, 5)]
        h, w = src.shape
        rows, cols = (a.ravel() for a in np.meshgrid(np.linspace(0, h - 1, 9), np.linspace(0, w - 1, 9),
                                                     indexing="ij"))
        x, y = rasterio.transform.xy(src.transform, rows, cols)
        lon, lat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True).transform(x, y)
    lat_off, lon_off, lat_scale, lon_scale = lat.mean(), lon.mean(), np.ptp(lat) / 2, np.ptp(lon) / 2
    design = np.stack([np.ones_like(lon), (lon - lon_off) / lon_scale, (lat - lat_off) / lat_scale], axis=1)

    def numerator(target):  # RPC00B terms 1, L, P; the rest (and the denominator's) zero
        coef = np.linalg.lstsq(design, target, rcond=None)[0]
        return [*coef, *[0.0] * 17]

    rpc = RPC(height_off=0.0, height_scale=1.0, lat_off=lat_off, lat_scale=lat_scale, long_off=lon_off,
              long_scale=lon_scale, line_off=h / 2, line_scale=h / 2, samp_off=w / 2, samp_scale=w / 2,
              line_num_coeff=numerator((rows - h / 2) / (h / 2)), line_den_coeff=[1.0, *[0.0] * 19],
              samp_num_coeff=numerator((cols - w / 2) / (w / 2)), samp_den_coeff=[1.0, *[0.0] * 19])
    for key in ("crs", "transform"):
        profile.pop(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(dn)
            dst.rpcs = rpc
            dst.update_tags(**tags)
            for i, t in enumerate(band_tags):
                dst.update_tags(i + 1, **t)
    return dst_path


def test_rpc_image_is_orthorectified_in_place(gf2_file, tmp_path):
    rpc_file = _write_rpc_copy(gf2_file, tmp_path / "GF2_L1A-MSS1.tif")
    grid = FINE_GRID
    truth = read_vhr(gf2_file, grid).values
    ortho = read_vhr(rpc_file, grid)
    assert ortho.attrs["georeferencing"] == "RPC"
    # the best alignment between the two is no shift, and there they agree closely
    inner = (slice(None), slice(5, -5), slice(5, -5))
    errors = {(dy, dx): np.nanmean(np.abs(ortho.values[inner] - np.roll(truth, (dy, dx), axis=(1, 2))[inner]))
              for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert min(errors, key=errors.get) == (0, 0)
    assert errors[(0, 0)] < 0.01 * np.nanmean(truth)
    facts = describe(rpc_file)
    assert facts["crs"] == "RPC" and facts["sensor"] == "GF2/PMS1"
    assert abs(facts["resolution"][0] - 6.0) < 0.1  # ground sample distance from the RPC footprint


# --- bad input: one InputError naming the file ----------------------------------------------


def test_three_band_image(gf2_file, tmp_path):
    bad = tmp_path / "rgb.tif"
    with rasterio.open(gf2_file) as src:
        profile, dn = src.profile, src.read([1, 2, 3])
    with rasterio.open(bad, "w", **{**profile, "count": 3}) as dst:
        dst.write(dn)
    with pytest.raises(InputError, match=r"rgb\.tif: has 3 bands; a 4-band B, G, R, NIR image is needed"):
        read_vhr(bad, FINE_GRID)
    with pytest.raises(InputError, match=r"rgb\.tif: has 3 bands"):
        describe(bad)


def test_raster_without_crs_or_rpcs(gf2_file, tmp_path):
    bad = tmp_path / "nocrs.tif"
    with rasterio.open(gf2_file) as src:
        profile, dn = src.profile, src.read()
    profile.pop("crs")
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(dn)
    with pytest.raises(InputError, match=r"nocrs\.tif: has neither a CRS nor RPCs"):
        read_vhr(bad, FINE_GRID, units="dn")


def test_truncated_file(naip, tmp_path):
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(naip.read_bytes()[:2048])
    with pytest.raises(InputError, match=r"truncated\.tif: cannot be read as a raster"):
        read_vhr(bad, NAIP_GRID, units="dn")
    with pytest.raises(InputError, match=r"truncated\.tif: cannot be read as a raster"):
        describe(bad)


def test_grid_outside_the_image(gf2_file, tmp_path):
    far = Grid(32650, 700000.0, 3600000.0, 10.0, 50, 50)
    with pytest.raises(InputError, match=r"MSS1\.tif: does not overlap the city grid"):
        read_vhr(gf2_file, far)
    rpc_file = _write_rpc_copy(gf2_file, tmp_path / "GF2_L1A-MSS1.tif")
    with pytest.raises(InputError, match=r"GF2_L1A-MSS1\.tif: RPC footprint does not overlap the city grid"):
        read_vhr(rpc_file, far)


def test_bad_calibration_tag(gf2_file, tmp_path):
    bad = tmp_path / "badtag.tif"
    bad.write_bytes(gf2_file.read_bytes())
    with rasterio.open(bad, "r+") as dst:
        dst.update_tags(2, GAIN="n/a")
    with pytest.raises(InputError, match=r"badtag\.tif: GAIN band tag 'n/a' is not a number"):
        read_vhr(bad, LCZ_GRID, units="radiance")


def test_bad_settings(gf2_file):
    with pytest.raises(InputError, match="units: must be one of reflectance, radiance, dn"):
        read_vhr(gf2_file, FINE_GRID, units="kelvin")
    with pytest.raises(InputError, match="band_order: must name blue, green, red and nir"):
        read_vhr(gf2_file, FINE_GRID, band_order=("red", "green", "blue"))
    with pytest.raises(InputError, match="gain: needs one value or four"):
        read_vhr(gf2_file, FINE_GRID, gain=[0.2, 0.2])
