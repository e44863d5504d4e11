"""Seed 001's planning objectives (eqs. 31-35), constraints (eqs. 28-29) and the composite of eq. 25.

A **plan** is an int (H, W) array (or its row-major (n,) flattening): 0 = nothing new planted, k in
1..S = species k-1 of the table planted on the cell's whole plantable area A_c. Everything an
optimiser needs is in a :class:`Problem` (numpy only, cells flattened row-major).

Definitions (the paper's words, made exact):

* eq. 31 ``CSP_total = sum_c A_c C_s S_cs G_s`` kg CO2 yr-1 with ``S_cs = survival_s x suitability_cs``
  (the paper's "survival rate adjustment coefficient based on environmental suitability").
* eq. 33 ``ESV_total = sum_c A_c V_s K_cs`` CNY yr-1 with ``K_cs = suitability_cs``.
* eq. 34 ``IC_total = sum_c A_c (P_s + L_s + I_s + 3 M_s)`` CNY: the paper counts maintenance "for the
  first three years", so the yearly M_s enters three times.
* eq. 35 ``CER = (ESV_total + CSP_total x carbon_price / 1000) / IC_total`` (the price is per tonne);
  0 when nothing costs anything (empty plan).
* eq. 32 ``BI = H' x E x C``: H' the Shannon index over the species' shares of the planted area;
  E = H' / ln(S) Pielou evenness over the S species *of the table* (not only those present, so that
  a plan of two equally planted species is not called perfectly even: BI then grows with richness
  as well as evenness, and is at most ln S); C the connectivity, the share of planted cells with
  at least one planted or existing-green (green_fraction >= 0.5) cell among their 8 neighbours.
  S = 1 gives E = 0.
* The paper reports CSP, ESV and IC per m2 of planted area (kg CO2 m-2 yr-1, CNY m-2 yr-1, CNY m-2):
  :func:`objectives` gives both (``csp`` and ``csp_total`` ...). Empty plan: all zeros, no NaN.

Composite (eq. 25): ``sum_k w_k f_k / sum_k w_k`` over normalised objectives in [0, 1]:
f_csp = CSP_total / norms["csp"], f_esv = ESV_total / norms["esv"], f_bi = BI / ln S,
f_ic = 1 - IC / norms["ic"] with IC per m2 planted (the paper's unit) and norms["ic"] the dearest species'
cost per m2, f_cer = CER / norms["cer"]. The norms are upper bounds that do not depend on the suitability
(a method's belief must not change the yardstick): the budget spent entirely at the best value per
CNY at suitability 1 (and at most every plantable m2 at the best per-m2 value), the best per-m2 CER of
any species at suitability 1. IC enters per m2, not as the share of the budget spent: the budget is
a constraint already, and a composite that falls with every CNY spent makes planners leave most of
it unspent (measured: a greedy planner stopped at 8 % of the budget on the demo city).

Constraints ``g_i(X) <= 0`` when satisfied (:func:`constraints`):

* budget ``IC_total / budget - 1``; maintenance ``sum_c A_c M_s / cap - 1`` (yearly, -1 uncapped);
  compatibility: share of the planted area on cells where the species is not compatible;
* species share: no species above ``max_species_share`` of the planted area, except that a species
  holding a *single* cell may exceed it (the first cell of a species is always allowed, otherwise
  nothing could ever be planted); g = max_s (a_s - max(share x T, a_s if the species has one cell)) / T.
  The mask of :func:`feasible_actions` allows species s on cell c when s is absent or
  ``a_s + A_c <= share (T + A_c)``; T only grows, so the rule holds for the final plan.
* biodiversity (soft, eq. 28 penalty in the environment): ``min_shannon - H'``.

The first four are hard: :func:`feasible_actions` masks every action that would break them, so any
plan built from feasible actions passes :func:`validate_plan`. A budget below the cheapest single
planting gives an all-False mask and ``problem.note`` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ...errors import InputError

OBJECTIVES = ("csp", "bi", "esv", "ic", "cer")
CONSTRAINTS = ("budget", "compatibility", "maintenance", "species_share", "biodiversity")
HARD = ("budget", "compatibility", "maintenance", "species_share")
GREEN_FRACTION = 0.5  # a cell at least this green counts as existing green for connectivity
MAINTENANCE_YEARS = 3  # eq. 34 counts the first three years of maintenance
REL_TOL = 1e-9  # budget / maintenance / share checks allow this relative slack (float sums)
SPECIES_VARIABLES = {
    "carbon_rate": "carbon_rate_kgco2_m2_yr", "survival": "survival_rate", "growth": "growth_stage_coef",
    "esv": "esv_cny_m2_yr", "procurement": "procurement_cost_cny_m2", "preparation": "preparation_cost_cny_m2",
    "planting": "planting_cost_cny_m2", "maintenance": "maintenance_cost_cny_m2_yr",
}


@dataclass(frozen=True)
class Settings:
    """What the planner may spend and must respect; checked on creation (one-line InputError naming the setting)."""

    budget_cny: float | None = None  # None: budget_share x cost of planting every plantable m2 at the median cost
    budget_share: float = 0.05
    maintenance_cny_yr: float | None = None  # yearly maintenance cap; None: no cap
    max_species_share: float = 0.25  # no species above this share of the planted area (hard)
    min_shannon: float = 1.5  # biodiversity threshold (soft: eq. 28 penalty)
    carbon_price_cny_t: float = 30.0
    weights: tuple[tuple[str, float], ...] = (("csp", 0.3), ("bi", 0.25), ("esv", 0.15), ("ic", 0.1), ("cer", 0.2))

    def __post_init__(self):
        weights = self.weights.items() if isinstance(self.weights, dict) else self.weights
        try:
            weights = tuple((str(k), float(v)) for k, v in weights)
        except (TypeError, ValueError):
            raise InputError("weights", f"must be (objective, weight) pairs, got {self.weights!r}") from None
        object.__setattr__(self, "weights", weights)
        names = [k for k, _ in weights]
        if bad := [k for k in names if k not in OBJECTIVES]:
            raise InputError("weights", f"unknown objective {bad[0]!r}; choose from {', '.join(OBJECTIVES)}")
        if len(set(names)) != len(names):
            raise InputError("weights", f"an objective is named twice: {names}")
        if any(not math.isfinite(v) or v < 0 for _, v in weights) or sum(v for _, v in weights) <= 0:
            raise InputError("weights", f"must be finite, >= 0 and not all 0, got {dict(weights)}")
        _check_number("budget_cny", self.budget_cny, low=0.0, optional=True)
        _check_number("budget_share", self.budget_share, low=0.0, high=1.0, open_low=True)
        _check_number("maintenance_cny_yr", self.maintenance_cny_yr, low=0.0, optional=True)
        _check_number("max_species_share", self.max_species_share, low=0.0, high=1.0, open_low=True)
        _check_number("min_shannon", self.min_shannon, low=0.0)
        _check_number("carbon_price_cny_t", self.carbon_price_cny_t, low=0.0)

    @property
    def weight(self) -> dict[str, float]:
        return dict(self.weights)

    def as_dict(self) -> dict:
        """The settings as plain values (weights as a mapping), for metrics, model files and version ids."""
        return {**{f: getattr(self, f) for f in self.__dataclass_fields__}, "weights": self.weight}


def _check_number(name, value, *, low, high=None, open_low=False, optional=False):
    if value is None and optional:
        return
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"must be a number, got {value!r}") from None
    bad = not math.isfinite(v) or v < low or (open_low and v == low) or (high is not None and v > high)
    if bad:
        lo = "(" if open_low else "["
        rng = f"in {lo}{low:g}, {high:g}]" if high is not None else f"{'>' if open_low else '>='} {low:g}"
        raise InputError(name, f"must be {rng}, got {value!r}")


def add_settings_args(p) -> None:
    """The planning settings' options (the workflow passes config["vegplan"]); ``settings_of`` reads them."""
    p.add_argument("--budget-cny", type=float, default=None, help="planting budget in CNY")
    p.add_argument("--budget-share", type=float, default=0.05,
                   help="without --budget-cny: this share of planting every plantable m2 (default 0.05)")
    p.add_argument("--maintenance-cny-yr", type=float, default=None, help="cap on yearly maintenance (CNY)")
    p.add_argument("--max-species-share", type=float, default=0.25, help="largest share of one species")
    p.add_argument("--min-shannon", type=float, default=1.5, help="biodiversity threshold on Shannon's H'")
    p.add_argument("--carbon-price", type=float, default=30.0, help="CNY per t CO2 (eq. 35)")
    p.add_argument("--weights", default="csp=0.3,bi=0.25,esv=0.15,ic=0.1,cer=0.2",
                   help="objective weights of eq. 25, name=value,...")


def settings_of(args) -> Settings:
    """The planning settings from the command line (the workflow passes config["vegplan"])."""
    weights = []
    for part in args.weights.split(","):
        name, _, value = part.partition("=")
        try:
            weights.append((name.strip(), float(value)))
        except ValueError:
            raise InputError("--weights", f"{part!r} is not name=number (e.g. csp=0.3,bi=0.25)") from None
    return Settings(budget_cny=args.budget_cny, budget_share=args.budget_share,
                    maintenance_cny_yr=args.maintenance_cny_yr, max_species_share=args.max_species_share,
                    min_shannon=args.min_shannon, carbon_price_cny_t=args.carbon_price, weights=tuple(weights))


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything an optimiser needs; numpy only, cells flattened row-major (n = H*W), S species."""

    shape: tuple[int, int]
    area: np.ndarray  # (n,) plantable m2
    compatible: np.ndarray  # (n, S) bool, False where area == 0
    suitability: np.ndarray  # (n, S) in [0, 1]: what is SCORED (truth, or a method's belief)
    carbon_rate: np.ndarray  # (S,) C_i kg CO2 m-2 yr-1
    survival: np.ndarray  # (S,)
    growth: np.ndarray  # (S,) G_i
    esv: np.ndarray  # (S,) V_i CNY m-2 yr-1
    cost: np.ndarray  # (S,) P + L + I + 3 M CNY m-2 (eq. 34)
    maintenance: np.ndarray  # (S,) M_i CNY m-2 yr-1
    green: np.ndarray  # (n,) bool existing green cells
    budget: float  # CNY
    maintenance_cap: float  # CNY yr-1, inf when uncapped
    norms: dict  # csp, esv, bi, cer (see the module docstring)
    settings: Settings
    species: tuple[str, ...] = ()  # species ids (table order)
    life_form: tuple[str, ...] = ()
    cheapest_cell_cost: float = math.inf  # cheapest single compatible planting (CNY); inf: none
    note: str = ""  # why nothing can be planted, "" when something can
    neighbours: np.ndarray = field(default=None, repr=False)  # (n, 8) 8-neighbour indices, -1 outside

    @property
    def n_cells(self) -> int:
        return int(self.area.size)

    @property
    def n_species(self) -> int:
        return int(self.cost.size)

    @property
    def csp_rate(self) -> np.ndarray:
        """(S,) C_i x survival_i x G_i: CSP per m2 at suitability 1."""
        return self.carbon_rate * self.survival * self.growth


def _neighbour_table(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.divmod(np.arange(h * w), w)
    out = np.full((h * w, 8), -1, dtype=np.int64)
    k = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            y, x = yy + dy, xx + dx
            ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            out[ok, k] = (y * w + x)[ok]
            k += 1
    return out


def _neighbour_sum(grid: np.ndarray) -> np.ndarray:
    """Sum of the 8 neighbours of every cell of a 2-D array (outside the grid counts 0)."""
    g = np.pad(grid.astype(np.int32), 1)
    h, w = grid.shape
    return sum(g[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
               for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def build_problem(shape, area, compatible, suitability, *, carbon_rate, survival, growth, esv, procurement,
                  preparation, planting, maintenance, green=None, settings: Settings | None = None,
                  species=(), life_form=()) -> Problem:
    """A Problem from plain arrays: area (H, W) or (n,), compatible / suitability (S, H, W) or (n, S), per-species
    (S,) traits. :func:`problem_from_site` calls it; tests and planners may too."""
    settings = settings or Settings()
    h, w = (int(v) for v in shape)
    n = h * w
    area = np.asarray(area, dtype=np.float64).reshape(-1)
    if area.size != n or not np.isfinite(area).all() or (area < 0).any():
        raise InputError("plantable_m2", f"must be {h}x{w} finite values >= 0")
    traits = {"carbon_rate": carbon_rate, "survival": survival, "growth": growth, "esv": esv,
              "procurement": procurement, "preparation": preparation, "planting": planting,
              "maintenance": maintenance}
    traits = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in traits.items()}
    s = traits["carbon_rate"].size
    ids = tuple(str(v) for v in species) or tuple(f"species {i + 1}" for i in range(s))
    for key, v in traits.items():
        if v.size != s:
            raise InputError(SPECIES_VARIABLES[key], f"has {v.size} values for {s} species")
        if (bad := ~np.isfinite(v) | (v < 0)).any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(SPECIES_VARIABLES[key], f"{ids[i]}: {v[i]:g} must be a finite number >= 0")
    compatible = _cells_by_species(compatible, n, s, "compatible").astype(bool) & (area > 0)[:, None]
    suitability = _suitability(suitability, n, s)
    green = np.zeros(n, bool) if green is None else np.asarray(green, dtype=bool).reshape(-1)
    cost = (traits["procurement"] + traits["preparation"] + traits["planting"]
            + MAINTENANCE_YEARS * traits["maintenance"])
    if settings.budget_cny is not None:
        budget = float(settings.budget_cny)
    else:
        budget = float(settings.budget_share * area.sum() * np.median(cost)) if s else 0.0
    cap = math.inf if settings.maintenance_cny_yr is None else float(settings.maintenance_cny_yr)
    rate = traits["carbon_rate"] * traits["survival"] * traits["growth"]
    # norms: upper bounds at suitability 1 — the budget spent at the best value per CNY, and no more than
    # planting every plantable m2 at the best per-m2 value (a plan's CSP_total is at most both)
    per_cny = np.where(cost > 0, 1.0 / np.where(cost > 0, cost, 1.0), 0.0)
    cer_best = ((traits["esv"] + rate * settings.carbon_price_cny_t / 1000) * per_cny)
    norms = {"csp": min(budget * float((rate * per_cny).max(initial=0.0)), float(area.sum()) * float(rate.max(initial=0.0))),
             "esv": min(budget * float((traits["esv"] * per_cny).max(initial=0.0)),
                        float(area.sum()) * float(traits["esv"].max(initial=0.0))),
             "bi": math.log(s) if s > 1 else 1.0, "cer": float(cer_best.max(initial=0.0)),
             "ic": float(cost.max(initial=0.0))}
    norms = {k: (float(v) if v > 0 else 1.0) for k, v in norms.items()}  # a zero yardstick would divide by zero
    cell_cost = np.where(compatible, area[:, None] * cost[None, :], np.inf)
    cheapest = float(cell_cost.min(initial=math.inf))
    problem = Problem(shape=(h, w), area=area, compatible=compatible, suitability=suitability,
                      carbon_rate=traits["carbon_rate"], survival=traits["survival"], growth=traits["growth"],
                      esv=traits["esv"], cost=cost, maintenance=traits["maintenance"], green=green, budget=budget,
                      maintenance_cap=cap, norms=norms, settings=settings, species=ids,
                      life_form=tuple(str(v) for v in life_form), cheapest_cell_cost=cheapest,
                      neighbours=_neighbour_table((h, w)))
    return replace(problem, note=_why_empty(problem))


def _why_empty(problem: Problem) -> str:
    """'' when some planting is feasible on the empty plan, else one line saying why not."""
    if not problem.compatible.any():
        return "no cell has plantable area with a compatible species; the plan stays empty"
    if problem.cheapest_cell_cost > problem.budget * (1 + REL_TOL):
        return (f"budget {problem.budget:,.0f} CNY is below the cheapest single planting "
                f"({problem.cheapest_cell_cost:,.0f} CNY for one cell); the plan stays empty")
    if not Tracker(problem).feasible().any():
        return (f"maintenance cap {problem.maintenance_cap:,.0f} CNY/yr is below the cheapest single planting's "
                "yearly maintenance; the plan stays empty")
    return ""


def _cells_by_species(values, n: int, s: int, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.shape == (n, s):
        return a
    if a.ndim == 3 and a.shape[0] == s and a.shape[1] * a.shape[2] == n:
        return a.reshape(s, n).T
    raise InputError(name, f"must be (species, y, x) = ({s}, ...) with {n} cells or (cells, species), got {a.shape}")


def _suitability(values, n: int, s: int) -> np.ndarray:
    a = _cells_by_species(values, n, s, "suitability").astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError("suitability", "has NaN or infinite values")
    return np.clip(a, 0.0, 1.0)  # a model's belief may overshoot; the objectives assume [0, 1]


def problem_from_site(site, settings: Settings | None = None, suitability=None) -> Problem:
    """The Problem of a site Dataset (site.py): its plantable area, compatibility, species traits and
    existing green (green_fraction >= 0.5). ``suitability``: None = the site's ``suitability`` (truth), a
    variable name of the site (e.g. "rule_suitability"), or an array (S, H, W) / (n, S) (a method's belief)."""
    settings = settings or Settings()
    need = ["plantable_m2", "compatible", "features", *SPECIES_VARIABLES.values()]
    if missing := [v for v in need if v not in site.variables]:
        raise InputError("site", f"missing variable {missing[0]!r}")
    h, w = site["plantable_m2"].shape
    if suitability is None or isinstance(suitability, str):
        name = suitability or "suitability"
        if name not in site.variables:
            raise InputError("site", f"missing variable {name!r}")
        suitability = site[name].transpose("species", "y", "x").values
    elif hasattr(suitability, "dims") and "species" in suitability.dims:
        suitability = suitability.transpose("species", ...).values
    feats = [str(f) for f in site["feature"].values]
    if "green_fraction" not in feats:
        raise InputError("site", "feature 'green_fraction' is missing")
    green = site["features"].sel(feature="green_fraction").transpose("y", "x").values >= GREEN_FRACTION
    traits = {k: site[v].values for k, v in SPECIES_VARIABLES.items()}
    life = site["life_form"].values if "life_form" in site.variables else ()
    return build_problem((h, w), site["plantable_m2"].transpose("y", "x").values,
                         site["compatible"].transpose("species", "y", "x").values, suitability,
                         green=green, settings=settings, species=site["species"].values, life_form=life, **traits)


def with_suitability(problem: Problem, suitability) -> Problem:
    """The same problem scored with another suitability (a method's belief); norms are unchanged."""
    return replace(problem, suitability=_suitability(suitability, problem.n_cells, problem.n_species))


# --- objectives ------------------------------------------------------------------------------------------
def _flat_plan(problem: Problem, plan) -> np.ndarray:
    p = np.asarray(plan)
    if p.size != problem.n_cells or p.ndim not in (1, 2) or (p.ndim == 2 and p.shape != problem.shape):
        raise InputError("plan", f"must be {problem.shape[0]}x{problem.shape[1]} (or {problem.n_cells} cells), "
                                 f"got shape {p.shape}")
    p = p.reshape(-1)
    if not np.issubdtype(p.dtype, np.integer):
        if not np.array_equal(p, np.round(p)):
            raise InputError("plan", "must hold whole species numbers")
        p = p.astype(np.int64)
    if p.size and (p.min() < 0 or p.max() > problem.n_species):
        raise InputError("plan", f"values must be 0 (nothing) or 1..{problem.n_species} (species), "
                                 f"got {p.min()}..{p.max()}")
    return p.astype(np.int64)


def _shannon(species_area: np.ndarray) -> float:
    total = species_area.sum()
    if total <= 0:
        return 0.0
    p = species_area[species_area > 0] / total
    return float(max(-(p * np.log(p)).sum(), 0.0))


def _summary(problem: Problem, *, planted_m2, cells, csp, esv, ic, maint, species_area, connected, incompatible_m2):
    """The objectives dict from the running sums (shared by objectives() and Tracker)."""
    s = problem.n_species
    h = _shannon(species_area)
    even = h / math.log(s) if s > 1 else 0.0
    conn = connected / cells if cells else 0.0
    per = (lambda v: v / planted_m2) if planted_m2 > 0 else (lambda v: 0.0)
    cer = (esv + csp * problem.settings.carbon_price_cny_t / 1000) / ic if ic > 0 else 0.0
    values = {"csp": per(csp), "bi": h * even * conn, "esv": per(esv), "ic": per(ic), "cer": cer,
              "csp_total": csp, "esv_total": esv, "ic_total": ic, "maintenance_total": maint,
              "planted_m2": planted_m2, "planted_cells": int(cells), "shannon": h, "evenness": even,
              "connectivity": conn, "species_used": int((species_area > 0).sum()), "incompatible_m2": incompatible_m2}
    values["composite"] = composite(problem, values)
    return {k: (float(v) if not isinstance(v, int) else v) for k, v in values.items()}


def objectives(problem: Problem, plan) -> dict:
    """Eqs. 31-35 of a plan: per m2 of planted area (csp, esv, ic; bi, cer are ratios) and totals
    (csp_total kg CO2/yr, esv_total CNY/yr, ic_total CNY, maintenance_total CNY/yr), planted_m2,
    planted_cells, shannon, evenness, connectivity, species_used, composite. Empty plan: zeros."""
    p = _flat_plan(problem, plan)
    cells = np.flatnonzero(p)
    sp = p[cells] - 1
    a = problem.area[cells]
    suit = problem.suitability[cells, sp]
    planted = np.zeros(problem.n_cells, bool)
    planted[cells] = True
    support = _neighbour_sum((planted | problem.green).reshape(problem.shape)).reshape(-1)
    return _summary(problem, planted_m2=float(a.sum()), cells=cells.size,
                    csp=float((a * problem.csp_rate[sp] * suit).sum()), esv=float((a * problem.esv[sp] * suit).sum()),
                    ic=float((a * problem.cost[sp]).sum()), maint=float((a * problem.maintenance[sp]).sum()),
                    species_area=np.bincount(sp, weights=a, minlength=problem.n_species),
                    connected=int((support[cells] > 0).sum()),
                    incompatible_m2=float(a[~problem.compatible[cells, sp]].sum()))


def normalised(problem: Problem, values: dict) -> dict[str, float]:
    """The five objectives scaled to [0, 1] (module docstring), from an :func:`objectives` dict."""
    n = problem.norms
    return {"csp": values["csp_total"] / n["csp"], "bi": values["bi"] / n["bi"], "esv": values["esv_total"] / n["esv"],
            "ic": 1.0 - values["ic"] / n["ic"], "cer": values["cer"] / n["cer"]}


def composite(problem: Problem, values: dict) -> float:
    """Eq. 25: sum_k w_k f_k / sum_k w_k over the normalised objectives (in [0, 1] for a feasible plan)."""
    f = normalised(problem, values)
    w = problem.settings.weights
    return float(sum(wk * f[k] for k, wk in w) / sum(wk for _, wk in w))


def _constraint_values(problem: Problem, *, ic, maint, species_area, single, incompatible_m2, shannon) -> dict:
    total = species_area.sum()
    share = problem.settings.max_species_share
    if total > 0:
        allowed = np.maximum(share * total, np.where(single, species_area, 0.0))
        g_share = float(((species_area - allowed) / total).max())
        g_compat = incompatible_m2 / total
    else:
        g_share, g_compat = -share, 0.0
    return {"budget": _relative(ic, problem.budget),
            "compatibility": float(g_compat),
            "maintenance": _relative(maint, problem.maintenance_cap),
            "species_share": g_share,
            "biodiversity": problem.settings.min_shannon - shannon}


def _relative(used: float, cap: float) -> float:
    """used / cap - 1 (<= 0 within the cap); -1 uncapped; a zero cap: -1 unused, 1 used."""
    if math.isinf(cap):
        return -1.0
    if cap <= 0:
        return 1.0 if used > 0 else -1.0
    return used / cap - 1.0


def constraints(problem: Problem, plan) -> dict[str, float]:
    """g_i(X) of every constraint (<= 0: satisfied): budget, compatibility, maintenance, species_share (hard),
    biodiversity (soft). Scales: budget and maintenance relative to their caps, shares of the planted area,
    biodiversity in nats of Shannon."""
    p = _flat_plan(problem, plan)
    cells = np.flatnonzero(p)
    sp = p[cells] - 1
    a = problem.area[cells]
    species_area = np.bincount(sp, weights=a, minlength=problem.n_species)
    return _constraint_values(problem, ic=float((a * problem.cost[sp]).sum()),
                              maint=float((a * problem.maintenance[sp]).sum()), species_area=species_area,
                              single=np.bincount(sp, minlength=problem.n_species) == 1,
                              incompatible_m2=float(a[~problem.compatible[cells, sp]].sum()),
                              shannon=_shannon(species_area))


def validate_plan(problem: Problem, plan, *, strict: bool = True) -> list[str]:
    """The violated hard constraints, one line each ([] when none); ``strict`` raises the first as InputError."""
    p = _flat_plan(problem, plan)
    g = constraints(problem, p)
    tol = REL_TOL
    bad = []
    if g["budget"] > tol:
        bad.append(f"budget: implementation cost is {100 * (g['budget'] + 1):.4f}% of the {problem.budget:,.0f} "
                   "CNY budget")
    if g["compatibility"] > 0:
        bad.append(f"compatibility: {100 * g['compatibility']:.2f}% of the planted area holds an incompatible species")
    if g["maintenance"] > tol:
        bad.append(f"maintenance: yearly maintenance is {100 * (g['maintenance'] + 1):.4f}% of the cap "
                   f"{problem.maintenance_cap:,.0f} CNY/yr")
    if g["species_share"] > tol:
        bad.append(f"species_share: a species holding more than one cell has {g['species_share'] * 100:.2f} points "
                   f"above the {problem.settings.max_species_share:.0%} cap of the planted area")
    if bad and strict:
        raise InputError("plan", bad[0])
    return bad


def feasible_actions(problem: Problem, plan=None, spent: float | None = None) -> np.ndarray:
    """(n, S) bool: planting species s on the (unplanted) cell c keeps every hard constraint (budget, compatibility,
    maintenance, species share). ``spent`` overrides the plan's implementation cost (CNY already spent)."""
    t = Tracker(problem, plan)
    if spent is not None:
        t.spent = float(spent)
    return t.feasible()


# --- incremental state ---------------------------------------------------------------------------------
class Tracker:
    """A plan's running sums, so that planting one cell costs O(S + 8) instead of a rescan.

    Holds the plan (flat), area per species, spent budget (IC_total), yearly maintenance, CSP/ESV totals,
    and for connectivity each cell's count of planted-or-green neighbours. Only additions (the environment
    and greedy planners plant, never uproot). ``feasible()`` is the vectorised (n, S) mask;
    ``gains()`` the composite change of every action at once.
    """

    def __init__(self, problem: Problem, plan=None):
        self.problem = pb = problem
        p = np.zeros(pb.n_cells, np.int64) if plan is None else _flat_plan(pb, plan)
        self.plan = p.astype(np.int16)
        planted = p > 0
        cells = np.flatnonzero(planted)
        sp = p[cells] - 1
        a = pb.area[cells]
        self.species_area = np.bincount(sp, weights=a, minlength=pb.n_species).astype(np.float64)
        self.species_cells = np.bincount(sp, minlength=pb.n_species).astype(np.int64)
        self.planted_m2 = float(a.sum())
        self.cells = int(cells.size)
        self.csp = float((a * pb.csp_rate[sp] * pb.suitability[cells, sp]).sum())
        self.esv = float((a * pb.esv[sp] * pb.suitability[cells, sp]).sum())
        self.spent = float((a * pb.cost[sp]).sum())
        self.maint = float((a * pb.maintenance[sp]).sum())
        self.incompatible_m2 = float(a[~pb.compatible[cells, sp]].sum())
        self.occupied = planted | pb.green
        self.support = _neighbour_sum(self.occupied.reshape(pb.shape)).reshape(-1).astype(np.int64)
        self.connected = int((self.support[cells] > 0).sum())
        self.open = pb.compatible & ~planted[:, None]  # compatible and not yet planted
        self._area_col = pb.area[:, None]
        self._share_tol = REL_TOL * max(float(pb.area.sum()), 1.0)
        self._values = None  # cache of values(), dropped by apply()

    # -- reading
    @property
    def planted(self) -> np.ndarray:
        return self.plan > 0

    def values(self) -> dict:
        """Same dict as :func:`objectives` of the current plan, in O(S) (do not modify it: it is cached)."""
        if self._values is None:
            self._values = _summary(self.problem, planted_m2=self.planted_m2, cells=self.cells, csp=self.csp,
                                    esv=self.esv, ic=self.spent, maint=self.maint, species_area=self.species_area,
                                    connected=self.connected, incompatible_m2=self.incompatible_m2)
        return self._values

    def constraints(self) -> dict[str, float]:
        """Same dict as :func:`constraints` of the current plan, in O(S)."""
        return _constraint_values(self.problem, ic=self.spent, maint=self.maint, species_area=self.species_area,
                                  single=self.species_cells == 1, incompatible_m2=self.incompatible_m2,
                                  shannon=_shannon(self.species_area))

    def limits(self) -> np.ndarray:
        """(S,) the largest cell area species s may still take (budget, maintenance and share cap)."""
        pb = self.problem
        budget_left = pb.budget - self.spent + REL_TOL * max(pb.budget, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lim = np.where(pb.cost > 0, max(budget_left, 0.0) / pb.cost, np.inf)
            if math.isfinite(pb.maintenance_cap):
                left = pb.maintenance_cap - self.maint + REL_TOL * max(pb.maintenance_cap, 1.0)
                lim = np.minimum(lim, np.where(pb.maintenance > 0, max(left, 0.0) / pb.maintenance, np.inf))
        share = pb.settings.max_species_share
        if share < 1:
            # a_s + A <= share (T + A)  <=>  A <= (share T - a_s) / (1 - share); an absent species is always allowed
            room = (share * self.planted_m2 - self.species_area + self._share_tol) / (1 - share)
            lim = np.minimum(lim, np.where(self.species_cells == 0, np.inf, room))
        return lim

    def feasible(self) -> np.ndarray:
        """(n, S) bool mask of the actions that keep every hard constraint."""
        return self.open & (self._area_col <= self.limits()[None, :])

    def gains(self) -> np.ndarray:
        """(n, S) composite change (eq. 25) of planting s on c, for every action at once (mask it yourself)."""
        pb = self.problem
        w = dict(pb.settings.weights)
        wsum = sum(w.values())
        before = normalised(pb, self.values())
        area = self._area_col
        suit = pb.suitability
        csp = self.csp + area * pb.csp_rate * suit
        esv = self.esv + area * pb.esv * suit
        ic = self.spent + area * pb.cost
        with np.errstate(divide="ignore", invalid="ignore"):
            cer = np.where(ic > 0, (esv + csp * pb.settings.carbon_price_cny_t / 1000) / ic, 0.0)
        out = w.get("csp", 0) * (csp / pb.norms["csp"] - before["csp"])
        out += w.get("esv", 0) * (esv / pb.norms["esv"] - before["esv"])
        out += w.get("cer", 0) * (cer / pb.norms["cer"] - before["cer"])
        if w.get("ic", 0):
            with np.errstate(divide="ignore", invalid="ignore"):
                ic_m2 = np.where(self.planted_m2 + area > 0, ic / (self.planted_m2 + area), 0.0)
            out += w["ic"] * (1.0 - ic_m2 / pb.norms["ic"] - before["ic"])
        if w.get("bi", 0):
            out += w["bi"] * (self._bi_after() / pb.norms["bi"] - before["bi"])
        return out / wsum

    def _bi_after(self) -> np.ndarray:
        """(n, S) BI after planting s on c: H' from T' and sum a ln a, C from the neighbour counts."""
        pb = self.problem
        a = self.species_area
        xlogx = np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0)
        new = a[None, :] + self._area_col
        t = self.planted_m2 + self._area_col
        q = xlogx.sum() - xlogx[None, :] + new * np.log(np.where(new > 0, new, 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(t > 0, np.log(np.where(t > 0, t, 1.0)) - q / np.where(t > 0, t, 1.0), 0.0)
        h = np.maximum(h, 0.0)
        lone = (self.planted & (self.support == 0)).reshape(pb.shape)
        joined = self.connected + (self.support > 0) + _neighbour_sum(lone).reshape(-1)
        conn = joined / (self.cells + 1)
        even = h / math.log(pb.n_species) if pb.n_species > 1 else 0.0 * h
        return h * even * conn[:, None]

    # -- changing
    def apply(self, cell: int, species: int) -> float:
        """Plant ``species`` (0-based table index) on ``cell`` (flat index); returns the composite change.
        Does not check the hard constraints (use :meth:`feasible`); planting a planted cell is an error."""
        pb = self.problem
        c, s = int(cell), int(species)
        if not (0 <= c < pb.n_cells and 0 <= s < pb.n_species):
            raise InputError("action", f"cell {c} / species {s} outside {pb.n_cells} cells x {pb.n_species} species")
        if self.plan[c]:
            raise InputError("action", f"cell {c} is already planted")
        before = self.values()["composite"]
        self._values = None
        a = float(pb.area[c])
        suit = float(pb.suitability[c, s])
        self.plan[c] = s + 1
        self.open[c] = False
        self.species_area[s] += a
        self.species_cells[s] += 1
        self.planted_m2 += a
        self.cells += 1
        self.csp += a * float(pb.csp_rate[s]) * suit
        self.esv += a * float(pb.esv[s]) * suit
        self.spent += a * float(pb.cost[s])
        self.maint += a * float(pb.maintenance[s])
        if not pb.compatible[c, s]:
            self.incompatible_m2 += a
        if not self.occupied[c]:  # a green cell already supported its neighbours
            self.occupied[c] = True
            nb = pb.neighbours[c]
            nb = nb[nb >= 0]
            self.support[nb] += 1
            self.connected += int((self.plan[nb] > 0)[self.support[nb] == 1].sum())
        if self.support[c] > 0:
            self.connected += 1
        return self.values()["composite"] - before
