"""The NPP product of seed 000 (CiSL-NPP) on a city's 30 m base grid: gap-filled seasonal composites,
seasonal PAR (observed, or forecast by the RNN), NPP per season and year (eqs. 5-8) and its trend.

The route, as the paper's Fig. 3: every Landsat acquisition's cloudy patches are reconstructed by
the two st-MAE models (RGB gives blue, green and red, false colour gives NIR); the filled
acquisitions of a season are combined per pixel (median); PAR is summed over the season; the NPP
function turns composite and PAR into NPP. Our choices where the paper is silent:

* seasons are calendar-year meteorological seasons (``seasons``): winter of year y is January,
  February and December of y, so every season of every year lies in that year and the Landsat
  cube's ``year`` / ``season_index`` label the acquisitions directly. Series run winter, spring,
  summer, autumn within a year (``SEASON_ORDER``);
* the RNN forecasts the city-mean seasonal PAR sum (the paper's 90-day granularity, taken as the
  season so that it matches the composites); a forecast season's map is that sum times the mean
  spatial pattern (map / city mean) of the same season in the training years. It is trained on
  the seasons before the held-out last year, and fills every season whose PAR is missing or
  incomplete; the held-out year's forecast is kept beside the observed PAR for the evaluation;
* annual NPP is the sum of the four seasons (NaN where one is missing); the trend is the per-pixel
  least-squares slope of annual NPP over the years (g C m-2 yr-2), where at least two years exist.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...align import open_aligned
from ...atomic import atomic_path
from ...errors import InputError
from ...grid import Grid, grid_of, warp_stack
from ...seasons import SEASONS
from ...training import device
from ..options import add_runtime_args, set_threads
from . import function
from .data import COMPOSITES, Acquisitions, add_common_args, load, model_files
from .train import fill_gaps, load_model

log = logging.getLogger(__name__)

SEASON_ORDER = (3, 0, 1, 2)  # chronological within a calendar year: winter (Jan-Feb ... Dec), spring, summer, autumn
_QUARTER = {m: (3 if m in (12, 1, 2) else (m - 3) // 3) for m in range(1, 13)}  # northern season of a month


def season_index(times, southern: bool) -> np.ndarray:
    """Season index (0 spring .. 3 winter) of each date; the southern hemisphere is six months off."""
    months = pd.DatetimeIndex(times).month.to_numpy()
    if southern:
        months = (months + 5) % 12 + 1
    return np.array([_QUARTER[m] for m in months])


def chronological(values: np.ndarray) -> np.ndarray:
    """(Y, 4, ...) indexed by season index -> the (Y * 4, ...) series in time order."""
    return np.asarray(values)[:, list(SEASON_ORDER)].reshape(-1, *np.shape(values)[2:])


def from_chronological(series: np.ndarray, years: int) -> np.ndarray:
    out = np.empty((years, 4, *np.shape(series)[1:]), np.float64)
    out[:, list(SEASON_ORDER)] = np.asarray(series).reshape(years, 4, *np.shape(series)[1:])
    return out


# --- PAR --------------------------------------------------------------------------------------------


def season_sums(values: np.ndarray, times, years: list[int], southern: bool, steps) -> np.ndarray:
    """(time, ...) -> (Y, 4, ...) sums per season of each year, NaN where a season lacks one of
    the time steps ``steps(year)`` (a DatetimeIndex) that fall in it; a NaN step keeps its pixel NaN."""
    times = pd.DatetimeIndex(times).normalize()
    season = season_index(times, southern)
    out = np.full((len(years), 4, *values.shape[1:]), np.nan)
    for i, year in enumerate(years):
        expected = np.bincount(season_index(steps(year), southern), minlength=4)
        for s in range(4):
            members = np.flatnonzero((times.year == year) & (season == s))
            if len(members) == expected[s]:
                out[i, s] = values[members].sum(axis=0)
    return out


def par_season_sums(par, years: list[int], southern: bool) -> np.ndarray:
    """Daily PAR (time, y, x) -> (Y, 4, y, x) sums in MJ m-2 per season; NaN where a day is missing."""
    return season_sums(par.values.astype(np.float64), par["time"].values, years, southern,
                       lambda year: pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D"))


def forecast_par(sums: np.ndarray, train_years: int, *, preset: str, seed: int, epochs: int | None) -> dict:
    """Train the RNN on the city-mean seasonal PAR of the first ``train_years`` years; forecast the rest.

    ``sums``: (Y, 4, y, x) observed seasonal sums. Returns the forecast sums (Y, 4, y, x; NaN in the
    training years), the RNN's facts and the city-mean series.
    """
    from ...models import par_rnn

    years = sums.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # seasons without PAR stay NaN
        city = np.nanmean(sums.reshape(years, 4, -1), axis=2)  # (Y, 4)
    series = chronological(city[:train_years])
    if not np.isfinite(series).all():
        raise InputError("PAR", "a season before the held-out year has no complete PAR: the RNN needs a "
                                "gap-free seasonal series to forecast from")
    fitted = par_rnn.train(series, preset=preset, seed=seed, epochs=epochs)
    steps = (years - train_years) * 4
    predicted = from_chronological(par_rnn.forecast(fitted, series, steps), years - train_years)
    with np.errstate(invalid="ignore", divide="ignore"):
        pattern = np.nanmean(sums[:train_years] / city[:train_years, :, None, None], axis=0)  # (4, y, x)
    out = np.full_like(sums, np.nan)
    out[train_years:] = predicted[:, :, None, None] * pattern[None]
    hp = fitted["hyperparameters"]
    return {"sums": out, "hyperparameters": hp, "final_loss": fitted["history"]["train_loss"][-1],
            "city_forecast": predicted.tolist(), "city_observed": city.tolist()}


# --- composites ---------------------------------------------------------------------------------------


def seasonal_median(reflectance: np.ndarray, year: np.ndarray, season: np.ndarray, years: list[int]) -> np.ndarray:
    """(T, B, H, W) acquisitions -> (Y, 4, B, H, W) per-pixel median of each season; NaN where none."""
    t, b, h, w = reflectance.shape
    out = np.full((len(years), 4, b, h, w), np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        for i, y in enumerate(years):
            for s in range(4):
                members = np.flatnonzero((year == y) & (season == s))
                if len(members):
                    out[i, s] = np.nanmedian(reflectance[members], axis=0)
    return out


def climatology_fill(composites: np.ndarray) -> np.ndarray:
    """The conventional gap fill (no st-MAE): a pixel's gap takes its median of the same season in
    the other years; what stays empty takes that season's city median."""
    out = composites.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(len(out)):
            others = np.delete(composites, i, axis=0)
            out[i] = np.where(np.isnan(out[i]), np.nanmedian(others, axis=0) if len(others) else np.nan, out[i])
        city = np.nanmedian(out, axis=(0, 3, 4), keepdims=True)  # (1, 4, B, 1, 1)
    return np.where(np.isnan(out), city, out)


def filled_acquisitions(acq: Acquisitions, models: dict[str, str | Path]) -> tuple[np.ndarray, dict]:
    """Every acquisition with its cloudy patches reconstructed: (T, 4, H, W) in ``acq.bands`` order.

    RGB's model fills blue, green and red; the false-colour model fills NIR (its red and green
    reconstructions are not used: one source per band)."""
    out = acq.reflectance.copy()
    facts = {}
    for kind, bands in (("rgb", ("red", "green", "blue")), ("false_colour", ("nir",))):
        model, scaler, data = load_model(models[kind])
        model.to(device())  # the GPU when there is one (bf16 autocast in fill_gaps)
        if data["kind"] != kind:
            raise InputError(models[kind], f"is the st-MAE of the {data['kind']} composite, not of {kind}")
        filled = fill_gaps(model, scaler, acq.composite(kind), acq.usable, acq.season)
        for band in bands:
            out[:, acq.bands.index(band)] = filled[:, COMPOSITES[kind].index(band)]
        facts[kind] = {"heldout_mse": data["heldout_mse"], "train_chips": data["train_chips"]}
    return out, facts


# --- NPP ------------------------------------------------------------------------------------------------


def npp_maps(composites: np.ndarray, par: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """(Y, 4, B, H, W) composites and (Y, 4, H, W) PAR sums -> (Y, 4, H, W) NPP, g C m-2 per season."""
    b = {name: composites[:, :, bands.index(name)] for name in ("blue", "green", "red", "nir")}
    return function.npp(b["blue"], b["green"], b["red"], b["nir"], par)


def annual(npp: np.ndarray) -> np.ndarray:
    """(Y, 4, H, W) -> (Y, H, W): the sum of the four seasons, NaN where one is missing."""
    return npp.sum(axis=1)


def trend(annual_npp: np.ndarray, years: list[int]) -> np.ndarray:
    """Per-pixel least-squares slope of annual NPP over the years with a value (NaN below two)."""
    y = np.asarray(annual_npp, np.float64)
    t = np.asarray(years, np.float64)[:, None, None] * np.isfinite(y)
    n = np.isfinite(y).sum(axis=0)
    y0 = np.nan_to_num(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = t.sum(0) / n
        ym = y0.sum(0) / n
        cov = (np.isfinite(y) * (t - tm) * (y0 - ym)).sum(0)
        var = (np.isfinite(y) * (t - tm) ** 2).sum(0)
        slope = cov / var
    return np.where((n >= 2) & (var > 0), slope, np.nan).astype(np.float32)


def open_maps(path) -> tuple["xr.Dataset", Grid]:  # noqa: F821
    """The NetCDF of ``make_maps`` and its base grid."""
    import xarray as xr
    from affine import Affine

    try:
        ds = xr.open_dataset(path).load()
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(path, f"cannot read as the NPP maps NetCDF ({type(err).__name__})") from None
    t = Affine(*ds.attrs["transform"])
    crs = str(ds.attrs["crs"])
    epsg = int(crs.split(":")[1]) if crs.startswith("EPSG:") else 0
    return ds, Grid(epsg, t.c, t.f, t.a, ds.sizes["x"], ds.sizes["y"], "" if epsg else crs)


def observed_par(aligned_dir: Path, years: list[int], southern: bool) -> tuple[np.ndarray, Grid, list[int]]:
    """Seasonal PAR sums (Y', 4, y, x) on the PAR grid, over every year of the city or of the PAR
    series (NaN where a season is incomplete), the PAR grid and those years."""
    par_ds = open_aligned(Path(aligned_dir) / "par.zarr", "coarse")
    par_years = sorted(set(years) | set(pd.DatetimeIndex(par_ds["time"].values).year))
    par_years = list(range(par_years[0], par_years[-1] + 1))  # a gap year stays (NaN): the series is in time order
    return par_season_sums(par_ds["par"].load(), par_years, southern), grid_of(par_ds["par"]), par_years


def city_inputs(aligned_dir, osm: bool = True) -> tuple[Acquisitions, Grid, bool, list[int]]:
    """The acquisitions (with the OSM green share when ``osm``), the base grid, the hemisphere and the years."""
    aligned_dir = Path(aligned_dir)
    acq = load(aligned_dir, osm=osm)
    cube = open_aligned(aligned_dir / "landsat.zarr", "base")
    return acq, grid_of(cube["usable"]), bool(int(cube.attrs.get("southern", 0))), sorted({int(y) for y in acq.year})


def make_maps(aligned_dir, models: dict[str, str | Path], out, *, preset: str = "demo", seed: int = 0,
              max_epochs: int | None = None, osm: bool = True) -> dict:
    """Every map of the product, written as one NetCDF ``out`` (read by evaluate and publish)."""
    import xarray as xr

    aligned_dir = Path(aligned_dir)
    acq, grid, southern, years = city_inputs(aligned_dir, osm)
    filled, mae = filled_acquisitions(acq, models)
    composites = seasonal_median(filled, acq.year, acq.season, years)
    conventional = climatology_fill(seasonal_median(acq.reflectance, acq.year, acq.season, years))

    observed, par_grid, par_years = observed_par(aligned_dir, years, southern)
    held = years[-1]
    forecast = forecast_par(observed, par_years.index(held), preset=preset, seed=seed, epochs=max_epochs)
    rows = [par_years.index(y) for y in years]
    obs_base = warp_stack(observed[rows], par_grid, grid, resampling="bilinear")  # PAR varies smoothly
    fc_base = warp_stack(forecast["sums"][rows], par_grid, grid, resampling="bilinear")
    par = np.where(np.isnan(obs_base), fc_base, obs_base)
    source = np.where(np.isfinite(observed[rows]).all(axis=(2, 3)), "observed",
                      np.where(np.isfinite(forecast["sums"][rows]).all(axis=(2, 3)), "forecast", "missing"))

    npp = npp_maps(composites, par, acq.bands)
    npp_held = npp_maps(composites[-1:], fc_base[-1:], acq.bands)[0]  # the protocol: PAR not yet known
    yearly = annual(npp)
    missing = [f"{years[i]} {SEASONS[s]}" for i in range(len(years)) for s in range(4)
               if np.isnan(composites[i, s]).all()]
    for what in missing:
        log.warning("NPP: no usable Landsat scene in %s: its season and the year's annual NPP stay empty", what)
    x, y = grid.xy()
    coords = {"year": years, "season": list(SEASONS), "band": list(acq.bands), "y": y, "x": x}
    dims = ("year", "season", "y", "x")
    ds = xr.Dataset({
        "npp": (dims, npp, {"units": function.CHOICES["npp_units"].replace("composite window", "season")}),
        "npp_annual": (("year", "y", "x"), yearly, {"units": "g C m-2 yr-1"}),
        "npp_trend": (("y", "x"), trend(yearly, years), {"units": "g C m-2 yr-2"}),
        "npp_heldout_forecast_par": (("season", "y", "x"), npp_held, {"units": "g C m-2 per season"}),
        "par": (dims, par.astype(np.float32), {"units": "MJ m-2 per season"}),
        "par_heldout_forecast": (("season", "y", "x"), fc_base[-1].astype(np.float32), {"units": "MJ m-2 per season"}),
        "par_source": (("year", "season"), source.astype(str)),
        "composite": (("year", "season", "band", "y", "x"), composites, {"units": "TOA reflectance"}),
        "conventional": (("year", "season", "band", "y", "x"), conventional.astype(np.float32),
                         {"units": "TOA reflectance", "fill": "same season of the other years, then the city"}),
        "acquisitions": (("year", "season"), np.array([[int(((acq.year == yr) & (acq.season == s)).sum())
                                                        for s in range(4)] for yr in years])),
        "green": (("y", "x"), acq.green),
    }, coords=coords, attrs={
        "crs": grid.crs, "transform": list(grid.transform)[:6], "heldout_year": held, "southern": int(southern),
        "osm_mask": "osm" if osm else "random (the city has no OSM: st-MAE masks at random)",
        "missing_seasons": "; ".join(missing) or "none", "choices": repr(function.CHOICES),
        "par_rnn": repr({k: v for k, v in forecast.items() if k != "sums"}), "st_mae": repr(mae),
    })
    with atomic_path(out) as tmp:
        ds.to_netcdf(tmp)
    return {"years": years, "missing_seasons": missing, "par_source": source.tolist(), "st_mae": mae,
            "par_rnn": {k: v for k, v in forecast.items() if k != "sums"}}


# --- the command: urbaneo npp predict ------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_args(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="NC")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    info = make_maps(args.aligned, model_files(args.models), args.out, preset=args.preset, seed=args.seed,
                     max_epochs=args.max_epochs, osm=args.osm)
    print(f"npp predict: {len(info['years'])} years, missing seasons: {', '.join(info['missing_seasons']) or 'none'}"
          f" -> {args.out}")
    return 0
