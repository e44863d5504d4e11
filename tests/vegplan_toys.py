"""Small synthetic inputs shared by the vegetation-plan tests (seed 001): random Problems, random feasible plans
and a site Dataset with the spec's variable names."""

from __future__ import annotations

import numpy as np
import xarray as xr

from urbaneo.stages.vegplan import objectives as vo
from urbaneo.synth.formats import species_table

SITE_FEATURES = ("ndvi", "building_fraction", "green_fraction", "temp_c", "ph", "uhi")


def random_problem(seed: int = 0, h: int = 12, w: int = 11, s: int = 6, *, bare: float = 0.25,
                   incompatible: float = 0.3, life_form=(), **settings) -> vo.Problem:
    """An (h, w) grid and s species with random traits: about ``bare`` of the cells have no plantable area and
    ``incompatible`` of the (cell, species) pairs are incompatible; 1 cell in 5 is existing green.
    ``settings`` go to vo.Settings (defaults: budget_share 0.3, max_species_share 0.3)."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(0, 10000, (h, w)) * (rng.random((h, w)) > bare)
    traits = {"carbon_rate": rng.uniform(1, 6, s), "survival": rng.uniform(0.7, 1, s),
              "growth": rng.uniform(0.3, 1, s), "esv": rng.uniform(30, 120, s), "procurement": rng.uniform(10, 200, s),
              "preparation": rng.uniform(10, 30, s), "planting": rng.uniform(5, 40, s),
              "maintenance": rng.uniform(5, 15, s)}
    st = {"budget_share": 0.3, "max_species_share": 0.3, **settings}
    return vo.build_problem((h, w), area, rng.random((s, h, w)) > incompatible, rng.random((s, h, w)),
                            green=rng.random((h, w)) > 0.8, settings=vo.Settings(**st), life_form=life_form, **traits)


def random_fill(problem: vo.Problem, rng, tracker: vo.Tracker | None = None) -> vo.Tracker:
    """A random feasible plan: random feasible actions until none is left (``tracker.plan`` is the plan)."""
    t = tracker or vo.Tracker(problem)
    while (mask := t.feasible()).any():
        c, s = np.argwhere(mask)[rng.integers(mask.sum())]
        t.apply(c, s)
    return t


def assert_hard_constraints(problem: vo.Problem, plan) -> None:
    assert vo.validate_plan(problem, plan, strict=False) == []
    g = vo.constraints(problem, plan)
    assert all(g[k] <= 1e-9 for k in vo.HARD), g


def smooth_field(rng, h, w, n):
    """(n, h, w) smooth random fields: white noise blurred by a few 3x3 box passes, standardised."""
    f = rng.standard_normal((n, h, w))
    for _ in range(4):
        p = np.pad(f, ((0, 0), (1, 1), (1, 1)), mode="edge")
        f = sum(p[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9
    return (f - f.mean((1, 2), keepdims=True)) / f.std((1, 2), keepdims=True)


def site(h=15, w=14, s=6, seed=0) -> xr.Dataset:
    """A small site Dataset with the spec's variable names (what stages.vegplan.site.build_site writes): smooth
    features, plantable area, per-species suitability and compatibility, the species table's traits."""
    rng = np.random.default_rng(seed)
    table = species_table(rng, s)
    features = smooth_field(rng, h, w, len(SITE_FEATURES)).astype(np.float32)
    green = 1 / (1 + np.exp(-2 * features[SITE_FEATURES.index("green_fraction")]))
    features[SITE_FEATURES.index("green_fraction")] = green
    cell_m2 = 10_000.0
    built = 1 / (1 + np.exp(-features[SITE_FEATURES.index("building_fraction")]))
    plantable = np.clip(1 - built - green, 0, 1) * cell_m2 * (rng.random((h, w)) > 0.1)
    k = np.arange(s)[:, None, None]
    suitability = 1 / (1 + np.exp(-(np.cos(k) * features[3] + np.sin(k) * features[4] + 0.3 * k - 0.5)))
    rule = np.clip(suitability + 0.2 * rng.standard_normal(suitability.shape), 0, 1)
    compatible = (suitability > 0.1) & (plantable > 0)[None]
    data = {
        "features": (("feature", "y", "x"), features),
        "plantable_m2": (("y", "x"), plantable.astype(np.float32)),
        "compatible": (("species", "y", "x"), compatible),
        "suitability": (("species", "y", "x"), suitability.astype(np.float32)),
        "rule_suitability": (("species", "y", "x"), rule.astype(np.float32)),
    }
    for col in table.columns:
        if col != "species_id":
            data[col] = (("species",), table[col].to_numpy())
    coords = {"feature": list(SITE_FEATURES), "species": table["species_id"].to_numpy(),
              "y": 3.4e6 - 100.0 * np.arange(h), "x": 4.0e5 + 100.0 * np.arange(w)}
    return xr.Dataset(data, coords=coords, attrs={"cell_m2": cell_m2})
