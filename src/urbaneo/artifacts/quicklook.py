"""Quicklook PNGs of maps: colour bar or class legend, scale bar, north arrow, axes in the grid's CRS.

Also the report's figures that are not maps: tables, line charts and confusion matrices.

Figures are drawn with matplotlib's Agg renderer under the library's default style (so a user's
matplotlibrc cannot change them) at a fixed dpi, and saved without the "Software" text chunk;
PNG from Agg carries no timestamp, so identical maps give identical bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.style import context

from ..atomic import atomic_path
from ..grid import Grid

DPI = 100
MAX_PIXELS = 2000  # larger maps are subsampled (nearest) before drawing; the figure is ~750 px wide
# white outlines keep the text, scale bar and arrow legible on dark and light maps alike
HALO = [patheffects.withStroke(linewidth=3, foreground="white")]
LINE_HALO = [patheffects.withStroke(linewidth=6, foreground="white")]


def _subsample(data: np.ndarray, grid: Grid) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Every step-th pixel of a big map, and the extent (km) the subsampled pixels cover."""
    step = max(1, math.ceil(max(data.shape) / MAX_PIXELS))
    sub = data[::step, ::step]
    size = grid.res * step
    x0, y1 = grid.xmin, grid.ymax
    return sub, (x0 / 1e3, (x0 + sub.shape[1] * size) / 1e3, (y1 - sub.shape[0] * size) / 1e3, y1 / 1e3)


def _figure(grid: Grid, title: str):
    # a bare Figure (no pyplot): no global figure registry, no backend switch; savefig renders with Agg
    aspect = grid.height / grid.width
    fig = Figure(figsize=(7.5, min(max(5.6 * aspect, 3.0), 9.0) + 0.9), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(f"easting (km), {grid.crs}")
    ax.set_ylabel("northing (km)")
    ax.ticklabel_format(useOffset=False, style="plain")
    return fig, ax


def _nice_length(target: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``target``."""
    power = 10.0 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def _decorate(ax, extent: tuple[float, float, float, float]) -> None:
    """A scale bar (lower left) and a north arrow (upper right); the grids are north-up."""
    x0, x1, y0, y1 = extent
    length = _nice_length((x1 - x0) / 5)
    bx, by = x0 + 0.05 * (x1 - x0), y0 + 0.06 * (y1 - y0)
    ax.plot([bx, bx + length], [by, by], color="black", linewidth=3, solid_capstyle="butt", path_effects=LINE_HALO)
    label = f"{length:g} km" if length >= 1 else f"{length * 1000:g} m"
    ax.text(bx + length / 2, by + 0.015 * (y1 - y0), label, ha="center", va="bottom", fontsize=9,
            path_effects=HALO)
    ax.annotate("", xy=(0.94, 0.92), xytext=(0.94, 0.79), xycoords="axes fraction",
                arrowprops=dict(arrowstyle="-|>", color="black", linewidth=1.5, mutation_scale=14,
                                path_effects=LINE_HALO))
    ax.text(0.94, 0.925, "N", transform=ax.transAxes, ha="center", va="bottom", fontsize=11, fontweight="bold",
            path_effects=HALO)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        # metadata={"Software": None} drops the only text chunk matplotlib would add (its version)
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def _stretch(values: np.ndarray, vmin, vmax) -> tuple[float, float]:
    """Colour limits: the given ones, else the 2nd and 98th percentiles of the finite values."""
    finite = values[np.isfinite(values)]
    lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    return float(lo if vmin is None else vmin), float(hi if vmax is None else vmax)


def quicklook(path: str | os.PathLike, data, grid: Grid, *, kind: str = "continuous", title: str,
              units: str | None = None, cmap: str | None = None,
              classes: Mapping[int, tuple[str, str]] | None = None, vmin: float | None = None,
              vmax: float | None = None, nodata: float | None = None) -> Path:
    """Write a PNG of a (H, W) map on ``grid``; returns the path.

    kind="continuous": colour map (default viridis) with a colour bar labelled ``units``; NaN and
    ``nodata`` are transparent. kind="classes": ``classes`` maps code -> (name, hex colour), the
    legend lists the classes present; other codes are transparent.
    """
    data = np.asarray(data)
    if data.shape != grid.shape:
        raise ValueError(f"data of shape {data.shape} does not fit the grid {grid.shape}")
    if kind not in ("continuous", "classes"):
        raise ValueError(f"kind must be 'continuous' or 'classes', not {kind!r}")
    if kind == "classes" and not classes:
        raise ValueError("a class map needs `classes` (code -> (name, hex colour))")
    sub, extent = _subsample(data, grid)
    with context("default"):
        fig, ax = _figure(grid, title)
        if kind == "continuous":
            values = sub.astype("float64")
            if nodata is not None:
                values[values == nodata] = np.nan
            lo, hi = _stretch(values, vmin, vmax)
            colours = colormaps[cmap or "viridis"].with_extremes(bad=(0, 0, 0, 0))
            image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=lo, vmax=hi, extent=extent,
                              interpolation="nearest")
            fig.colorbar(image, ax=ax, shrink=0.85, label=units or "")
        else:
            rgba = np.zeros(sub.shape + (4,), dtype="uint8")
            present = [code for code in sorted(classes) if np.any(sub == code)]
            for code in present:
                rgba[sub == code] = np.round(np.array(to_rgba(classes[code][1])) * 255)
            ax.imshow(rgba, extent=extent, interpolation="nearest")
            handles = [Patch(facecolor=classes[c][1], edgecolor="0.3", label=f"{c} {classes[c][0]}") for c in present]
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                      title=units)
        _decorate(ax, extent)
        return _save(fig, Path(path))


def overlay(path: str | os.PathLike, background, mask, grid: Grid, title: str, *, units: str | None = None,
            mask_label: str = "mask", colour: str = "#e31a1c") -> Path:
    """Write a PNG of a boolean ``mask`` drawn over a grey continuous ``background`` (e.g. night lights)."""
    background, mask = np.asarray(background, dtype="float64"), np.asarray(mask)
    if background.shape != grid.shape or mask.shape != grid.shape:
        raise ValueError(f"background {background.shape} and mask {mask.shape} must both be the grid {grid.shape}")
    back, extent = _subsample(background, grid)
    sub = _subsample(np.nan_to_num(mask.astype("float64")) > 0, grid)[0]
    with context("default"):
        fig, ax = _figure(grid, title)
        lo, hi = _stretch(back, None, None)
        image = ax.imshow(np.ma.masked_invalid(back), cmap=colormaps["gray"], vmin=lo, vmax=hi, extent=extent,
                          interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.85, label=units or "")
        rgba = np.zeros(sub.shape + (4,), dtype="uint8")
        rgba[sub] = np.round(np.array(to_rgba(colour, alpha=0.55)) * 255)
        ax.imshow(rgba, extent=extent, interpolation="nearest")
        ax.legend(handles=[Patch(facecolor=colour, alpha=0.55, label=mask_label)], loc="lower right", fontsize=9)
        _decorate(ax, extent)
        return _save(fig, Path(path))


def panels(path: str | os.PathLike, maps: Mapping[str, np.ndarray], grid: Grid, title: str, *,
           masks: frozenset[str] | set[str] = frozenset(), columns: int = 4, colour: str = "#e31a1c",
           cmap: str = "gray", shared: bool = False, units: str | None = None) -> Path:
    """Several (H, W) maps of one ``grid`` side by side (e.g. every method's mask, the paper's Fig. 6).

    Maps named in ``masks`` are drawn as 0/1 masks in ``colour`` on white (other values, nodata,
    transparent); the others in ``cmap`` with a 2-98 % stretch, each its own or (``shared``) one
    for all, then with a colour bar in ``units``. Only the first panel gets the scale bar and north
    arrow; all share the extent.
    """
    rows = math.ceil(len(maps) / columns)
    aspect = grid.height / grid.width
    with context("default"):
        fig = Figure(figsize=(3.2 * columns, 3.2 * aspect * rows + 0.8), dpi=DPI, layout="constrained")
        fig.suptitle(title)
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        common = _stretch(np.concatenate([np.asarray(d, "float64").ravel() for n, d in maps.items() if n not in masks]),
                          None, None) if shared else None
        image = None
        for i, (ax, (name, data)) in enumerate(zip(axes, maps.items())):
            sub, extent = _subsample(np.asarray(data), grid)
            if name in masks:
                rgba = np.full(sub.shape + (4,), 255, dtype="uint8")
                rgba[sub == 1] = np.round(np.array(to_rgba(colour)) * 255)
                ax.imshow(rgba, extent=extent, interpolation="nearest")
            else:
                values = sub.astype("float64")
                lo, hi = common or _stretch(values, None, None)
                image = ax.imshow(np.ma.masked_invalid(values), cmap=colormaps[cmap], vmin=lo, vmax=hi,
                                  extent=extent, interpolation="nearest")
            ax.set_title(name, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                _decorate(ax, extent)
        for ax in axes[len(maps):]:
            ax.set_axis_off()
        if shared and image is not None:
            fig.colorbar(image, ax=list(axes[:len(maps)]), shrink=0.8, label=units or "")
        return _save(fig, Path(path))


def table(path: str | os.PathLike, columns: list[str], rows: Mapping[str, list], title: str, *,
          highlight: str | None = None, digits: int = 3) -> Path:
    """A table of numbers as a PNG (a metrics table for the report); ``highlight`` names a row set in bold."""
    def fmt(value):
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "-"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    cells = [[fmt(v) for v in values] for values in rows.values()]
    with context("default"):
        fig = Figure(figsize=(1.1 + 0.95 * len(columns), 0.9 + 0.32 * (len(rows) + 1)), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        tab = ax.table(cellText=cells, rowLabels=list(rows), colLabels=columns, loc="center", cellLoc="right")
        tab.auto_set_font_size(False)
        tab.set_fontsize(8)
        if highlight in rows:
            r = list(rows).index(highlight) + 1
            for (row, _), cell in tab.get_celld().items():
                if row == r:
                    cell.set_text_props(fontweight="bold")
        return _save(fig, Path(path))


def lines(path: str | os.PathLike, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, *,
          xlabel: str, ylabel: str, integer_x: bool = True) -> Path:
    """A line chart of named (x, y) series (e.g. an error per year for each model)."""
    with context("default"):
        fig = Figure(figsize=(6, 3.6), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        for name, (x, y) in series.items():
            ax.plot(x, y, marker="o", label=name)
        if integer_x:
            ax.set_xticks(sorted({v for x, _ in series.values() for v in x}))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        return _save(fig, Path(path))


def loss_curves(path: str | os.PathLike, histories: Mapping[str, Mapping], title: str) -> Path:
    """Training (solid) and validation (dashed) loss per epoch of each named model, one panel each
    (their losses are on different scales); ``histories`` maps a model to its ``fit`` history
    (``epoch``, ``train_loss`` and, where there is one, ``val_loss``; None values are left out)."""
    with context("default"):
        fig = Figure(figsize=(4.2 * len(histories), 3.4), dpi=DPI, layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(histories)))
        for ax, (name, h) in zip(axes, histories.items()):
            for key, label, style in (("train_loss", "training", "-"), ("val_loss", "validation", "--")):
                pairs = [(e, v) for e, v in zip(h["epoch"], h.get(key) or []) if v is not None]
                if pairs:
                    ax.plot(*zip(*pairs), style, marker=".", label=label)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            ax.legend(fontsize=7)
        fig.suptitle(title, fontsize=10)
        return _save(fig, Path(path))


def pareto_fronts(path: str | os.PathLike, fronts: Mapping[str, np.ndarray], objectives: Sequence[str], cost: str,
                  title: str, *, highlight: str | None = None) -> Path:
    """Pareto fronts of several methods, one panel per objective against the cost: ``fronts`` maps a method
    to (k, len(objectives) + 1) points whose last column is the cost; ``highlight`` is drawn thicker."""
    with context("default"):
        fig = Figure(figsize=(5 * len(objectives), 4), dpi=DPI, layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(objectives)))
        for method, points in fronts.items():
            points = np.asarray(points, float)
            if not len(points):
                continue
            points = points[np.argsort(points[:, -1], kind="stable")]
            style = {"lw": 2.2} if method == highlight else {"lw": 1, "alpha": 0.8}
            for j, ax in enumerate(axes):
                ax.plot(points[:, -1], points[:, j], marker=".", label=method, **style)
        for ax, name in zip(axes, objectives):
            ax.set_xlabel(cost)
            ax.set_ylabel(name)
        axes[-1].legend(fontsize=7)
        fig.suptitle(title, fontsize=10)
        return _save(fig, Path(path))


def confusion(path: str | os.PathLike, cm, labels: Sequence[str], title: str, *, normalise: str | None = "row") -> Path:
    """A confusion matrix heat map as the SU-Net paper's Figure 4; rows = reference, columns = predicted.

    normalise="row": the colour and the number in each cell are the count divided by the row's
    reference count, in %; a row without reference samples is grey. normalise=None: raw counts.
    Classes with neither reference nor predicted samples are dropped, as the title says.
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or len(labels) != cm.shape[0]:
        raise ValueError(f"need a square matrix with one label per class, got {cm.shape} and {len(labels)} labels")
    if normalise not in ("row", None):
        raise ValueError(f"normalise must be 'row' or None, not {normalise!r}")
    reference = cm.sum(1)
    keep = np.flatnonzero((reference > 0) | (cm.sum(0) > 0))
    if keep.size == 0:  # an empty matrix: draw every class rather than nothing
        keep = np.arange(len(labels))
    dropped = len(labels) - keep.size
    sub, ref = cm[np.ix_(keep, keep)], reference[keep]
    if normalise == "row":
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(ref[:, None] > 0, 100.0 * sub / ref[:, None], np.nan)
        vmax, text, unit = 100.0, "{:.1f}", "% of the reference class"
    else:
        values, vmax, text, unit = sub.astype("float64"), max(float(sub.max(initial=0)), 1.0), "{:.0f}", "samples"
    size = 2.5 + 0.42 * keep.size
    with context("default"):
        fig = Figure(figsize=(size + 1.6, size), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        colours = colormaps["Blues"].with_extremes(bad="0.85")
        image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=0.0, vmax=vmax, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8, label=unit)
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value) and sub[i, j] > 0:  # empty cells stay blank, as in the paper
                ax.text(j, i, text.format(value), ha="center", va="center", fontsize=7,
                        color="white" if value > 0.6 * vmax else "black")
        ticks = np.arange(keep.size)
        ax.set_xticks(ticks, [labels[k] for k in keep], rotation=90, fontsize=8)
        ax.set_yticks(ticks, [f"{labels[k]} (n={r})" for k, r in zip(keep, ref)], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("reference")
        note = f"\n({dropped} classes without reference or prediction not shown)" if dropped else ""
        ax.set_title(title + note, fontsize=10)
        return _save(fig, Path(path))
