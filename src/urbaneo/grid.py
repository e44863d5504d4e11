"""One grid per city: UTM from the AOI centroid, bounds snapped to whole pixels.

Every raster that reaches a model is put on a grid from here, so pixels of different
sources line up exactly and derived grids (VHR, 100 m planning, region) nest in the base one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from pyproj import Transformer

BASE_RES = 30.0  # the Landsat-native base grid of every city


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone containing (lon, lat)."""
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, origin, pixel size and shape.

    The CRS is an EPSG code, or (``epsg`` 0) a WKT string for CRSs without one, such as the MODIS
    sinusoidal grid of the NPP reference.
    """

    epsg: int
    xmin: float
    ymax: float
    res: float
    width: int
    height: int
    wkt: str = ""

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, self.xmin, 0.0, -self.res, self.ymax)

    @property
    def crs(self) -> str:
        return self.wkt or f"EPSG:{self.epsg}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.xmin, self.ymax - self.height * self.res, self.xmin + self.width * self.res, self.ymax)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def with_res(self, res: float) -> "Grid":
        """The grid covering the same bounds at another resolution (bounds must divide evenly)."""
        xmin, ymin, xmax, ymax = self.bounds
        w, h = (xmax - xmin) / res, (ymax - ymin) / res
        if abs(w - round(w)) > 1e-6 or abs(h - round(h)) > 1e-6:
            raise ValueError(f"resolution {res} does not divide the grid extent {xmax - xmin} x {ymax - ymin}")
        return Grid(self.epsg, xmin, ymax, res, int(round(w)), int(round(h)), self.wkt)

    def xy(self) -> tuple["np.ndarray", "np.ndarray"]:  # noqa: F821
        """Pixel-centre coordinates as two 1-D arrays (x increasing, y decreasing)."""
        import numpy as np

        x = self.xmin + (np.arange(self.width) + 0.5) * self.res
        y = self.ymax - (np.arange(self.height) + 0.5) * self.res
        return x, y


def snapped_grid(epsg: int, bounds: tuple[float, float, float, float], res: float) -> Grid:
    """Smallest grid with pixel edges on multiples of ``res`` that covers ``bounds``."""
    xmin = math.floor(bounds[0] / res) * res
    ymin = math.floor(bounds[1] / res) * res
    xmax = math.ceil(bounds[2] / res) * res
    ymax = math.ceil(bounds[3] / res) * res
    return Grid(epsg, xmin, ymax, res, int(round((xmax - xmin) / res)), int(round((ymax - ymin) / res)))


def city_grid(aoi: tuple[float, float, float, float], res: float = BASE_RES, buffer_m: float = 0.0) -> Grid:
    """The city's UTM grid around a lon/lat AOI (plus an optional buffer in metres)."""
    lon_min, lat_min, lon_max, lat_max = aoi
    epsg = utm_epsg((lon_min + lon_max) / 2, (lat_min + lat_max) / 2)
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    # transform_bounds densifies the edges, so the curved AOI outline is fully covered
    xmin, ymin, xmax, ymax = to_utm.transform_bounds(lon_min, lat_min, lon_max, lat_max)
    return snapped_grid(epsg, (xmin - buffer_m, ymin - buffer_m, xmax + buffer_m, ymax + buffer_m), res)


def _kernel_scale(src, grid: Grid) -> tuple[float, float] | None:
    """Grid pixels per source pixel along x and y, measured on one source pixel under the grid centre.

    GDAL otherwise derives this ratio from the size of each chunk's source window, which a rotation
    (a warp across UTM zones) inflates: a same-resolution bilinear warp then runs a widened,
    downsampling kernel (slower, blurred), and the blur changes with the way GDAL chunks the job.
    """
    from rasterio.warp import transform

    cx, cy = grid.xmin + grid.width * grid.res / 2, grid.ymax - grid.height * grid.res / 2
    (sx,), (sy,) = transform(grid.crs, src.crs, [cx], [cy])
    col, row = ~src.transform @ (sx, sy)
    corners = [src.transform @ (col + dc, row + dr) for dc, dr in ((0, 0), (1, 0), (0, 1))]
    xs, ys = transform(src.crs, grid.crs, [c[0] for c in corners], [c[1] for c in corners])
    scale = (math.hypot(xs[1] - xs[0], ys[1] - ys[0]) / grid.res, math.hypot(xs[2] - xs[0], ys[2] - ys[0]) / grid.res)
    return scale if all(math.isfinite(v) and v > 0 for v in scale) else None


def warp_to_grid(source, grid: Grid, *, bands=None, resampling: str = "bilinear", src_nodata=None,
                 dst_nodata: float = float("nan"), dtype: str = "float32") -> "np.ndarray":  # noqa: F821
    """Read a raster (path or open dataset) onto ``grid``: (bands, height, width) in ``dtype``.

    GDAL warps the source straight into the output array, chunk by chunk, reading only the source
    blocks under the grid, so memory stays bounded by the grid size whatever the size of the source
    (bench/ measures it). Pixels the source does not cover get ``dst_nodata``. A source without CRS,
    or one that does not overlap the grid at all, raises InputError naming the file.
    """
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject, transform_bounds

    from .errors import InputError

    opened = isinstance(source, (str, bytes)) or hasattr(source, "__fspath__")
    src = rasterio.open(source) if opened else source
    try:
        name = src.name
        if src.crs is None:
            raise InputError(name, "raster has no CRS (georeferencing is missing)")
        sx0, sy0, sx1, sy1 = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
        gx0, gy0, gx1, gy1 = grid.bounds
        if sx1 <= gx0 or sx0 >= gx1 or sy1 <= gy0 or sy0 >= gy1:
            raise InputError(name, f"does not overlap the city grid {grid.crs} {tuple(round(b) for b in grid.bounds)}")
        indexes = list(bands) if bands is not None else list(range(1, src.count + 1))
        nodata = src_nodata if src_nodata is not None else src.nodata
        # Warping into the array (rather than reading a WarpedVRT) is gdalwarp's own chunked path: the VRT
        # warps per 512 x 128 block, and a masked read of it warps every block a second time for the mask.
        out = np.full((len(indexes), grid.height, grid.width), dst_nodata, dtype=dtype)
        scale = _kernel_scale(src, grid)
        reproject(rasterio.band(src, indexes), out, src_nodata=nodata, dst_transform=grid.transform,
                  dst_crs=grid.crs, dst_nodata=dst_nodata, resampling=Resampling[resampling],
                  **({"XSCALE": scale[0], "YSCALE": scale[1]} if scale else {}))
        return out
    except (rasterio.errors.RasterioIOError, rasterio.errors.WarpOperationError) as err:
        # a corrupt block fails inside the warp; GDAL's own message (the cause) names what is wrong
        raise InputError(getattr(src, "name", source), f"cannot be read as a raster ({err.__cause__ or err})") from None
    finally:
        if opened:
            src.close()


def warp_array(data, src: Grid, dst: Grid, *, resampling: str = "bilinear", nodata=None,
               dtype: str = "float32") -> "np.ndarray":  # noqa: F821
    """An in-memory (H, W) array on ``src`` warped onto ``dst``: (H', W') in ``dtype``.

    ``nodata`` marks source pixels to skip (NaN for float data by default); output pixels without
    source get NaN (float) or ``nodata``.
    """
    import numpy as np
    from rasterio.io import MemoryFile

    data = np.asarray(data)
    if data.shape != src.shape:
        raise ValueError(f"data of shape {data.shape} does not fit the grid {src.shape}")
    if nodata is None and np.issubdtype(data.dtype, np.floating):
        nodata = float("nan")
    out_nodata = float("nan") if np.issubdtype(np.dtype(dtype), np.floating) else nodata
    with MemoryFile() as mem, mem.open(driver="GTiff", width=src.width, height=src.height, count=1,
                                       dtype=data.dtype.name, crs=src.crs, transform=src.transform,
                                       nodata=nodata) as ds:
        ds.write(data, 1)
        return warp_to_grid(ds, dst, resampling=resampling, src_nodata=nodata, dst_nodata=out_nodata, dtype=dtype)[0]


def warp_stack(values, src: Grid, dst: Grid, *, resampling: str) -> "np.ndarray":  # noqa: F821
    """``warp_array`` over every leading index: (..., h, w) on ``src`` -> (..., H, W) float64 on ``dst``."""
    import numpy as np

    values = np.asarray(values)
    flat = values.reshape(-1, *src.shape).astype(np.float32)
    out = np.stack([warp_array(a, src, dst, resampling=resampling) for a in flat])
    return out.reshape(*values.shape[:-2], *dst.shape).astype(np.float64)


def grid_of(da) -> Grid:
    """The Grid of an aligned array, exactly, from its pixel-centre coordinates and CRS (EPSG or WKT)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    x, y = da.x.values, da.y.values
    res = float(x[1] - x[0])
    epsg = da.rio.crs.to_epsg()
    return Grid(int(epsg or 0), float(x[0] - res / 2), float(y[0] + res / 2), res, x.size, y.size,
                "" if epsg else da.rio.crs.to_wkt())


def grid_of_dataset(src) -> Grid:
    """The Grid of an open north-up rasterio dataset (a COG this package wrote)."""
    t, epsg = src.transform, src.crs.to_epsg()
    return Grid(int(epsg or 0), t.c, t.f, t.a, src.width, src.height, "" if epsg else src.crs.to_wkt())


def to_dataarray(data, grid: Grid, dims: tuple[str, ...], coords: dict | None = None, name: str | None = None,
                 attrs: dict | None = None):
    """Wrap an array on ``grid`` as an xarray.DataArray with x/y coordinates and the CRS (rioxarray)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    x, y = grid.xy()
    all_coords = {"y": y, "x": x, **(coords or {})}
    da = xr.DataArray(data, dims=dims, coords={k: v for k, v in all_coords.items() if k in dims},
                      name=name, attrs=attrs or {})
    return da.rio.write_crs(grid.crs, inplace=True).rio.write_transform(grid.transform, inplace=True)  # no copies


VHR_RES = 3.0  # VHR imagery (GF-2 MS is 3.2 m) is put on 3 m, which nests in the 30 m base grid
PLANNING_RES = 100.0  # seed 001's planning cells (50 m also works)
REGION_RES = 500.0  # coarse products over AOI + buffer: VIIRS pixels are ~460 m
COARSE_RES = 500.0  # daily PAR over the AOI (PAR products are 0.05 degree)


@dataclass(frozen=True)
class CityGrids:
    """The grids of one city, all in the UTM zone of its AOI centroid.

    base: 30 m over the AOI (Landsat, OSM layers); vhr: the same extent at 3 m; planning: 100 m over
    the AOI (vegetation plan, LCZ labels); region: 500 m over AOI + region buffer (night lights);
    region_fine: 30 m over the same (urban land); coarse: 500 m over the AOI (PAR).
    """

    base: Grid
    vhr: Grid
    planning: Grid
    region: Grid
    region_fine: Grid  # 30 m over AOI + buffer: urban-land labels (FROM-GLC30 style)
    coarse: Grid

    def named(self, name: str) -> Grid:
        return getattr(self, name)

    def as_dict(self) -> dict:
        return {name: vars(getattr(self, name)) for name in self.__dataclass_fields__}


def city_grids(aoi: tuple[float, float, float, float], region_buffer_km: float, *, vhr_res: float = VHR_RES,
               planning_res: float = PLANNING_RES) -> CityGrids:
    base = city_grid(aoi, BASE_RES)
    region_fine = city_grid(aoi, BASE_RES, buffer_m=region_buffer_km * 1000)
    return CityGrids(
        base=base,
        vhr=base.with_res(vhr_res),
        planning=snapped_grid(base.epsg, base.bounds, planning_res),
        region=snapped_grid(base.epsg, region_fine.bounds, REGION_RES),
        region_fine=region_fine,
        coarse=snapped_grid(base.epsg, base.bounds, COARSE_RES),
    )
