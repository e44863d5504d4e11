"""Seed 001's baseline planners and the tools that compare plans (section "Comparison methods").

* ``greedy_plan``: the rule-based optimiser the hybrid baselines use (the paper's "CNN+MP" plants by a
  method's belief with a classical optimiser): greedy on the eq. 25 composite gain per CNY, with exact
  gains of every action kept incrementally.
* ``ilp_plan``: the paper's MPM, "traditional mathematical programming": a binary integer program solved
  by CBC (bundled with PuLP), with the linear part of the composite as objective.
* ``RandomForestSuitability``: the RFR baseline, a random forest from per-cell features to the species
  suitabilities.
* ``prefix_fronts`` / ``pareto_front`` / ``hypervolume``: the Pareto fronts of the comparison: the plans
  formed by prefixes of a planting order, scored with the true problem.

Conventions: problems are :class:`~urbaneo.stages.vegplan.objectives.Problem` (cells flattened row-major);
an order is a list of (cell, species) with cell the flat index and species the 0-based table index (the
plan holds species + 1). Hard constraints are the objectives module's (``Tracker.feasible`` /
``validate_plan``); no planner plants a species its belief gives suitability 0 (``min_suitability``).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from dataclasses import replace

import numpy as np

from ...errors import InputError
from .objectives import Problem, Tracker, composite, normalised, objectives, validate_plan

log = logging.getLogger(__name__)

GREEDY_STOPS = ("best_prefix", "no_gain")
CBC_SEED = 20240101  # any fixed value: CBC's random seeds, so that equal problems give equal plans
RESTRICTED_MIN = 64  # ILP stage 2 keeps at least this many best cells of every species
CAP_SLACK = 1e-6  # ILP caps are tightened by this share: CBC's feasibility tolerance (1e-7) must not break them
FREE = 1e30  # "per CNY" rank multiplier of a free planting: it comes first when it gains, last when it loses


def _with_weights(problem: Problem, weights) -> Problem:
    """The problem with other composite weights (a dict or pairs); Settings checks them."""
    if weights is None:
        return problem
    pairs = tuple(weights.items()) if isinstance(weights, dict) else tuple(weights)
    return replace(problem, settings=replace(problem.settings, weights=pairs))


def _usable(problem: Problem, min_suitability: float) -> np.ndarray:
    """(n, S) pairs a planner may plant: compatible, with plantable area, and believed to live there
    (suitability above ``min_suitability``). The last rule matters: eq. 32 rewards a new species for
    diversity whatever its suitability, but a species the belief gives no chance adds no real diversity."""
    return problem.compatible & (problem.area > 0)[:, None] & (problem.suitability > min_suitability)


def _benefit(problem: Problem) -> np.ndarray:
    """(n, S) the linear part of the composite (eq. 25) of planting s on c, the CSP and ESV terms:
    (w_csp A C S G suit / csp_norm + w_esv A V suit / esv_norm) / sum_k w_k."""
    w = problem.settings.weight
    a = problem.area[:, None]
    suit = problem.suitability
    v = w.get("csp", 0.0) * a * problem.csp_rate * suit / problem.norms["csp"]
    v = v + w.get("esv", 0.0) * a * problem.esv * suit / problem.norms["esv"]
    return v / sum(w.values())


def _linear_value(problem: Problem) -> np.ndarray:
    """(n, S) the ILP's objective coefficient of planting s on c: :func:`_benefit` minus the cost term
    w_ic A cost / budget / sum_k w_k. The composite's own IC term (f_ic = 1 - IC per m2 / dearest cost) is
    a ratio; the programme prices cost linearly instead, as the share of the budget spent: a planting
    pays when its CSP + ESV value per CNY is at least w_ic / (w_csp + w_esv) of the best value per CNY
    (the norms are the budget spent at the best value per CNY)."""
    w = problem.settings.weight
    v = _benefit(problem)
    if problem.budget > 0:
        v = v - w.get("ic", 0.0) / sum(w.values()) * problem.area[:, None] * problem.cost / problem.budget
    return v


def _plan_of(problem: Problem, order) -> np.ndarray:
    plan = np.zeros(problem.n_cells, np.int16)
    for c, s in order:
        plan[c] = s + 1
    return plan.reshape(problem.shape)


# --- greedy ----------------------------------------------------------------------------------------


class _Gains:
    """The exact composite change of every (cell, species) action (what ``Tracker.gains`` computes), kept
    incrementally: everything that depends on the action alone is computed once, the Shannon term keeps
    (a_s + A_c) ln(a_s + A_c) per species column and refreshes only the planted species' column, and the
    arithmetic runs in place in preallocated buffers, so one step costs about ten (n, S) array operations
    instead of Tracker's thirty (tests check both agree)."""

    def __init__(self, problem: Problem):
        pb = self.problem = problem
        w = pb.settings.weight
        wsum = sum(w.values())
        self.k = {k: w.get(k, 0.0) / wsum for k in ("csp", "bi", "esv", "ic", "cer")}  # weight / sum of weights
        self.a = pb.area[:, None]
        self.price = pb.settings.carbon_price_cny_t / 1000
        self.linear = _benefit(pb)
        self.d_ic = self.a * pb.cost
        self.k_ic = self.k["ic"] / pb.norms["ic"]
        # the CER numerator of the action, already times w_cer / (sum w x cer_norm)
        self.k_cer = self.k["cer"] / pb.norms["cer"]
        self.d_value = self.a * pb.suitability * (pb.esv + pb.csp_rate * self.price) * self.k_cer
        self.ln_s = math.log(pb.n_species) if pb.n_species > 1 else 0.0
        self.k_bi = self.k["bi"] / (self.ln_s * pb.norms["bi"]) if self.ln_s > 0 else 0.0  # BI = H'^2 C / ln S
        self.xlogx = np.zeros((pb.n_cells, pb.n_species))  # (a_s + A_c) ln(a_s + A_c), a_s = 0 at the start
        self.refresh(np.zeros(pb.n_species), range(pb.n_species))
        self.out = np.empty_like(self.xlogx)
        self.tmp = np.empty_like(self.xlogx)
        self.tmp2 = np.empty_like(self.xlogx)

    def refresh(self, species_area: np.ndarray, species) -> None:
        for s in species:
            new = species_area[s] + self.a[:, 0]
            self.xlogx[:, s] = np.where(new > 0, new * np.log(np.where(new > 0, new, 1.0)), 0.0)

    def __call__(self, t: Tracker) -> np.ndarray:
        """(n, S) composite change of each action from the tracker's plan (a buffer, valid until the next call)."""
        pb = self.problem
        before = normalised(pb, t.values())
        out, tmp = self.out, self.tmp
        # the constant parts: f_ic = 1 - IC/T / ic_norm, and minus every ratio's value before the action
        np.add(self.linear, self.k["ic"] * (1 - before["ic"]) - self.k["cer"] * before["cer"]
               - self.k["bi"] * before["bi"], out=out)
        total = t.planted_m2 + self.a  # (n, 1) planted area after the action
        safe = np.where(total > 0, total, 1.0)
        np.add(self.d_ic, t.spent, out=tmp)  # IC after the action
        if self.k_cer:
            num = np.add(self.d_value, (t.esv + t.csp * self.price) * self.k_cer, out=self.tmp2)
            if t.spent > 0:
                np.divide(num, tmp, out=num)
            else:  # empty plan: a free action has CER 0 (objectives' rule for IC = 0)
                np.divide(num, tmp, out=num, where=tmp > 0)
                num[tmp <= 0] = 0.0
            out += num
        if self.k_ic:  # IC per m2 after the action
            tmp *= self.k_ic / safe
            out -= tmp
        if self.k_bi:
            a = t.species_area
            xlogx = np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0)
            # H' = ln T' - sum_s a'_s ln a'_s / T'; only the planted species' term differs from now
            np.add(self.xlogx, xlogx.sum() - xlogx, out=tmp)
            tmp /= safe
            np.subtract(np.log(safe), tmp, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)
            tmp *= tmp
            lone = (t.planted & (t.support == 0)).reshape(pb.shape)
            joined = t.connected + (t.support > 0) + _neighbour_count(lone)  # connectivity after the action
            tmp *= (joined * (self.k_bi / (t.cells + 1)))[:, None]
            out += tmp
        return out


def _neighbour_count(mask: np.ndarray) -> np.ndarray:
    """(n,) number of True cells among the 8 neighbours of each cell of a (H, W) bool grid."""
    g = np.pad(mask.astype(np.int32), 1)
    h, w = mask.shape
    return sum(g[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if (dy, dx) != (0, 0)).reshape(-1)


def greedy_plan(problem: Problem, *, weights=None, stop: str = "best_prefix",
                min_suitability: float = 0.0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Greedy planting by marginal composite gain (eq. 25) per CNY, scored with ``problem.suitability``
    (the method's belief); ``weights`` replaces the composite's weights.

    Each step takes, among the actions that keep every hard constraint (``Tracker.feasible``) and that the
    belief gives a chance (suitability > ``min_suitability``), the (cell, species) whose exact composite
    change divided by its implementation cost A_c x cost_s is largest (ties: lowest cell, then species).
    The gains are exact (BI's Shannon and connectivity terms included), all actions at once every step.

    ``stop``: "no_gain" stops at the first step where no action raises the composite (the textbook rule).
    "best_prefix" (default) keeps planting, least loss per CNY first, until nothing is feasible and returns
    the prefix of highest composite: the composite is not monotone (CER and BI are ratios, IC a cost), so
    the textbook rule strands the plan after a few small cells (planted alone they maximise CER) while a
    plan that spends the budget can score higher. The best prefix is never worse than the "no_gain" plan,
    which is one of the prefixes.

    Returns (plan (H, W) int16, order): order = [(cell, species)] in planting order, cell the row-major
    flat index, species the 0-based table index (plan value species + 1).
    """
    if stop not in GREEDY_STOPS:
        raise InputError("greedy_plan", f"stop must be one of {', '.join(GREEDY_STOPS)}, got {stop!r}")
    pb = _with_weights(problem, weights)
    t = Tracker(pb)
    usable = _usable(pb, min_suitability)
    order: list[tuple[int, int]] = []
    if not usable.any():
        return _plan_of(pb, order), order
    gains = _Gains(pb)
    cell_cost = pb.area[:, None] * pb.cost[None, :]
    per_cny = np.divide(1.0, cell_cost, out=np.full(cell_cost.shape, FREE), where=cell_cost > 0)
    rank = np.empty(cell_cost.shape)
    best, best_len = composite(pb, t.values()), 0
    n_species = pb.n_species
    while True:
        feasible = t.feasible() & usable
        if not feasible.any():
            break
        gain = gains(t)
        np.multiply(gain, per_cny, out=rank)
        np.copyto(rank, -np.inf, where=~feasible)
        k = int(np.argmax(rank))
        if stop == "no_gain" and gain.flat[k] <= 0:
            break
        c, s = divmod(k, n_species)
        t.apply(c, s)
        gains.refresh(t.species_area, (s,))
        order.append((c, s))
        now = composite(pb, t.values())
        if now > best:
            best, best_len = now, len(order)
    if stop == "best_prefix":
        order = order[:best_len]
    return _plan_of(pb, order), order


# --- integer programme (MPM) -----------------------------------------------------------------------


def biodiversity_k(min_shannon: float) -> int:
    """Species the ILP must plant for the biodiversity threshold: ceil(exp(min_shannon)), the richness whose
    even mix has Shannon index min_shannon (k equal shares give H' = ln k)."""
    return max(math.ceil(math.exp(min_shannon) - 1e-12), 1)


def ilp_plan(problem: Problem, *, max_variables: int = 200_000, time_limit: float = 60, msg: bool = False,
             biodiversity: str | None = "entropy", gap: float = 0.01, max_nodes: int = 1000,
             min_suitability: float = 0.0) -> tuple[np.ndarray, dict]:
    """The MPM baseline: a binary integer programme solved by CBC (the binary bundled with PuLP).

    Variables: x[c,s] in {0, 1} for every pair a planner may plant (compatible, plantable area, believed
    suitability > ``min_suitability``, one cell's cost within the budget and its maintenance within the cap).
    With a_s = sum_c A_c x[c,s] (m2 of species s) and T = sum_s a_s (a continuous variable):

    * maximise sum v[c,s] x[c,s], v = (w_csp A C S G suit / csp_norm + w_esv A V suit / esv_norm
      - w_ic A cost / budget) / sum_k w_k: the composite's linear terms (f_csp, f_esv of eq. 25, same norms)
      and a linear cost term, the share of the budget spent. The composite's own f_ic (IC per m2) and CER
      are ratios and BI an entropy, none linear; BI enters as a constraint. info["objective"] is this value
      of the returned plan (greedy's too, on fallback).
    * one species per cell: sum_s x[c,s] <= 1;
    * budget: sum A_c cost_s x[c,s] <= budget; maintenance: sum A_c M_s x[c,s] <= cap (when capped);
    * species share cap rho with the objectives module's floor rule (a species on a single cell may exceed
      it): a_s - rho T <= Amax_s u_s and sum_c x[c,s] <= N_s - (N_s - 1) u_s, u_s binary (u_s = 1 allows
      one cell only), Amax_s / N_s the largest area / number of candidate cells of s (one candidate: no rows);
    * the biodiversity threshold H' >= min_shannon, ``biodiversity``:
      "entropy" (default): every species a_s <= min(rho, exp(-min_shannon)) T, no exemption. It
      *guarantees* the threshold (Shannon >= min-entropy = -ln max_s p_s) and so needs at least
      k = ceil(exp(min_shannon)) species; it also replaces the share cap rows and their u_s.
      "richness": at least k species with at least m2_min each (y_s binary, a_s >= m2_min y_s,
      sum_s y_s >= k; k capped at the species that have candidates), m2_min = 1 / (2k) of the area the budget
      (and maintenance cap) buys at the median species cost. Cheaper for CBC than a share of T, but it does
      not guarantee the threshold (on a demo-size synthetic problem: H' = 1.48 for min_shannon 1.5).
      None: no constraint.
      Nothing is added when k < 2. When the constraint makes the programme infeasible (a budget too small
      for k species) it is solved again without it (the threshold is soft in the objectives module too).
      info["biodiversity"] says what was enforced.

    Solving. CBC alone stalls on the demo's ~10^5 binaries (its feasibility pump finds no first solution in
    minutes) although the LP relaxation is nearly integral, so: (1) the LP relaxation, whose value is an
    upper bound (info["bound"]); (2) the programme restricted to the LP's support plus every species' best
    cells by value per CNY (at least ``RESTRICTED_MIN``, half the support): a plan, done when it is within
    ``gap`` (relative) of the bound; (3) otherwise the full programme warm-started from it. The MIP solves
    stop at relative gap ``gap``, ``max_nodes`` branch-and-bound nodes (deterministic) or ``time_limit``
    seconds per CBC call (wall time: not reproducible, so generous; status says when a limit stopped it).
    One thread and fixed seeds (CBC_SEED): equal problems give equal plans. Caps are tightened by
    ``CAP_SLACK`` so that CBC's feasibility tolerance cannot break them, and the plan is checked with
    ``validate_plan``.

    Falls back to :func:`greedy_plan` when there are more than ``max_variables`` variables, CBC ends without
    a feasible plan (error, limits) or its plan breaks a hard constraint. info: solver ("cbc" | "greedy"),
    status, objective, bound, variables, seconds (builds and solves), biodiversity, reason (greedy only).
    """
    t0 = time.perf_counter()
    pb = problem
    if biodiversity not in ("richness", "entropy", None):
        raise InputError("ilp_plan", f"biodiversity must be 'richness', 'entropy' or None, got {biodiversity!r}")
    value = _linear_value(pb)
    cell_cost = pb.area[:, None] * pb.cost[None, :]
    cand = _usable(pb, min_suitability) & (cell_cost <= pb.budget * (1 - CAP_SLACK))
    if math.isfinite(pb.maintenance_cap):
        cand &= pb.area[:, None] * pb.maintenance[None, :] <= pb.maintenance_cap * (1 - CAP_SLACK)
    cells, species = np.nonzero(cand)  # row-major: by cell, then species
    v = value[cells, species]
    n_var = int(cells.size)

    def info(**kw):
        return {"variables": n_var, "seconds": time.perf_counter() - t0, **kw}

    def fallback(reason: str):
        log.info("ilp_plan: %s; falling back to greedy", reason)
        plan, order = greedy_plan(pb, min_suitability=min_suitability)
        obj = float(sum(value[c, s] for c, s in order))
        return plan, info(solver="greedy", status="fallback", objective=obj, bound=float("nan"),
                          biodiversity="n/a", reason=reason)

    if n_var > max_variables:
        return fallback(f"{n_var} variables exceed max_variables = {max_variables}")
    if n_var == 0:
        return np.zeros(pb.shape, np.int16), info(solver="cbc", status="Empty", objective=0.0, bound=0.0,
                                                  biodiversity=f"off: {pb.note or 'nothing can be planted'}")
    k_asked = biodiversity_k(pb.settings.min_shannon)
    k = min(k_asked, int(np.unique(species).size))
    bi = biodiversity if k >= 2 else None
    # richness floor: 1 / (2k) of the area the budget buys at the median cost of the plantable species
    cell_area = np.zeros(pb.n_cells)
    cell_area[cells] = pb.area[cells]
    present = np.unique(species)
    affordable = pb.budget / max(float(np.median(pb.cost[present])), 1e-12)
    if math.isfinite(pb.maintenance_cap):
        affordable = min(affordable, pb.maintenance_cap / max(float(np.median(pb.maintenance[present])), 1e-12))
    floor_m2 = min(float(cell_area.sum()), affordable) / (2 * k)
    if bi is None:
        bi_note = "off" if biodiversity is None else f"off: min_shannon {pb.settings.min_shannon:g} asks k = {k}"
    elif bi == "richness":
        bi_note = f"richness: >= {k} species with >= {floor_m2:,.0f} m2 each"
        if k < k_asked:
            bi_note += f" (min_shannon asks {k_asked}; only {k} species can be planted)"
    else:
        cap = min(pb.settings.max_species_share, math.exp(-pb.settings.min_shannon))
        bi_note = f"entropy: every species <= {cap:.4f} of the planted area"

    density = v / np.maximum(cell_cost[cells, species], 1e-12)

    def solve(bi_mode):
        _, status, bound, xv = _solve_ilp(pb, cells, species, v, bi_mode, k, floor_m2, time_limit, msg, relax=True)
        if xv is None or status != "Optimal":
            return None, status, float("nan")
        # (2) the LP's support plus every species' best cells by value per CNY, room to dilute the shares
        keep = xv > 1e-9
        per_species = max(RESTRICTED_MIN, int(keep.sum()) // 2)
        for s in np.unique(species):
            idx = np.flatnonzero(species == s)
            keep[idx[np.argsort(-density[idx], kind="stable")[:per_species]]] = True
        sub = np.flatnonzero(keep)
        plan, status, obj, _ = _solve_ilp(pb, cells[sub], species[sub], v[sub], bi_mode, k, floor_m2, time_limit, msg,
                                          gap=gap, max_nodes=max_nodes)
        if plan is not None and obj >= bound - gap * abs(bound):
            return plan, "Optimal (within gap of the LP bound)", bound
        start = None
        if plan is not None:
            start = np.zeros(n_var, bool)
            start[sub] = plan.reshape(-1)[cells[sub]] == species[sub] + 1
        # (3) the full programme, warm-started
        full, status, full_obj, _ = _solve_ilp(pb, cells, species, v, bi_mode, k, floor_m2, time_limit, msg,
                                               start=start, gap=gap, max_nodes=max_nodes)
        if full is None or (plan is not None and full_obj < obj):
            return plan, "Feasible (restricted programme)" if plan is not None else status, bound
        return full, status, bound

    plan, status, bound = solve(bi)
    if plan is None and bi is not None and status == "Infeasible":
        bi_note = f"dropped ({bi} with k = {k} is infeasible within the budget)"
        plan, status, bound = solve(None)
    if plan is None:
        return fallback(f"CBC found no feasible solution (status {status})")
    if bad := validate_plan(pb, plan, strict=False):
        return fallback(f"CBC's plan breaks a hard constraint ({bad[0]})")
    p = plan.reshape(-1).astype(np.int64)
    on = np.flatnonzero(p)
    objective = float(value[on, p[on] - 1].sum())
    return plan, info(solver="cbc", status=status, objective=objective, bound=bound, biodiversity=bi_note)


def _solve_ilp(pb: Problem, cells, species, v, bi: str | None, k: int, floor_m2: float, time_limit: float,
               msg: bool, *, relax: bool = False, start=None, gap: float | None = None, max_nodes: int | None = None):
    """Build and solve the programme of :func:`ilp_plan`; (plan or None, status, objective, x values)."""
    import pulp

    area = pb.area[cells]
    unit = float(area.mean())
    a = area / unit  # areas in units of the mean cell area: coefficients near 1 for CBC
    scale = float(np.abs(v).max()) or 1.0  # objective scaled so that its largest coefficient is 1
    prob = pulp.LpProblem("vegplan_mpm", pulp.LpMaximize)
    x = [prob.add_variable(f"x{i}", cat=pulp.LpBinary) for i in range(cells.size)]
    prob += pulp.LpAffineExpression(zip(x, (v / scale).tolist()))
    # one species per cell (cells with a single candidate need no row)
    bounds = np.flatnonzero(np.diff(cells, prepend=-1, append=pb.n_cells + 1))  # starts of each cell's run
    for lo, hi in itertools.pairwise(bounds):
        if hi - lo > 1:
            prob += pulp.lpSum(x[lo:hi]) <= 1
    cost = area * pb.cost[species]
    prob += pulp.LpAffineExpression(zip(x, (cost / pb.budget).tolist())) <= 1 - CAP_SLACK, "budget"
    if math.isfinite(pb.maintenance_cap):
        m = area * pb.maintenance[species]
        prob += pulp.LpAffineExpression(zip(x, (m / pb.maintenance_cap).tolist())) <= 1 - CAP_SLACK, "maintenance"
    # T (planted area) as one continuous variable, so the per-species rows stay short
    total = prob.add_variable("T", lowBound=0)
    prob += pulp.LpAffineExpression(zip(x, a.tolist())) - total == 0, "total"
    by_species = [np.flatnonzero(species == s) for s in range(pb.n_species)]
    a_of = {s: pulp.LpAffineExpression(zip([x[i] for i in idx], a[idx].tolist()))
            for s, idx in enumerate(by_species) if idx.size}
    rho = pb.settings.max_species_share
    us, ys = {}, {}
    if bi == "entropy":
        # max share <= exp(-min_shannon) for every species guarantees H' >= min_shannon; with the share cap
        # folded in, no species needs the single-cell exemption (which the relaxation handles badly)
        cap = min(rho, math.exp(-pb.settings.min_shannon))
        for s, a_s in a_of.items():
            prob += a_s - cap * total <= -CAP_SLACK, f"share{s}"
    else:
        for s, idx in enumerate(by_species):
            if rho >= 1 or idx.size < 2:  # one candidate cell: the floor rule always exempts it
                continue
            u = us[s] = prob.add_variable(f"u{s}", cat=pulp.LpBinary)
            prob += a_of[s] - rho * total - float(a[idx].max()) * u <= -CAP_SLACK, f"share{s}"
            prob += pulp.lpSum(x[i] for i in idx) + (idx.size - 1) * u <= idx.size, f"single{s}"
    if bi == "richness":
        m = floor_m2 / unit
        for s, a_s in a_of.items():
            y = ys[s] = prob.add_variable(f"y{s}", cat=pulp.LpBinary)
            prob += a_s - m * y >= 0, f"floor{s}"
        prob += pulp.lpSum(ys.values()) >= k, "richness"
    if start is not None:  # every integer variable needs a value, else CBC drops the start
        for xi, on in zip(x, start):
            xi.setInitialValue(int(on))
        a_start = np.bincount(species[start], weights=a[start], minlength=pb.n_species)
        n_start = np.bincount(species[start], minlength=pb.n_species)
        total.setInitialValue(float(a_start.sum()))
        for s, u in us.items():
            u.setInitialValue(int(n_start[s] <= 1))
        for s, y in ys.items():
            y.setInitialValue(int(a_start[s] >= floor_m2 / unit))
    # the CBC binary bundled with PuLP 3 (PULP_CBC_CMD's), through COIN_CMD, which PuLP 4 keeps
    bundled = pulp.PULP_CBC_CMD.pulp_cbc_path
    solver = pulp.COIN_CMD(path=bundled if os.access(bundled, os.X_OK) else None, msg=msg, timeLimit=time_limit,
                           threads=1, mip=not relax, warmStart=start is not None, gapRel=gap, maxNodes=max_nodes,
                           options=[f"randomSeed {CBC_SEED}", f"randomCbcSeed {CBC_SEED}"])
    try:
        prob.solve(solver)
    except pulp.PulpSolverError as err:
        return None, f"error: {' '.join(str(err).split())}", float("nan"), None
    status = pulp.LpStatus[prob.status]
    xv = np.array([xi.value() or 0.0 for xi in x])
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return None, status, float("nan"), xv
    if relax:
        return None, status, float(v @ xv), xv
    if prob.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "Feasible (stopped at max_nodes or time_limit)"
    chosen = xv > 0.5
    plan = np.zeros(pb.n_cells, np.int16)
    plan[cells[chosen]] = species[chosen] + 1
    return plan.reshape(pb.shape), status, float(v[chosen].sum()), xv


def ilp_order(problem: Problem, plan) -> list[tuple[int, int]]:
    """The plantings of ``plan`` ordered by value density: the linear composite value (see :func:`ilp_plan`)
    per CNY of implementation cost, best first (ties: lowest cell). Prefixes of it trace the ILP's
    Pareto front the way greedy's planting order does. Same (cell, species) convention as greedy_plan."""
    p = np.asarray(plan).reshape(-1).astype(np.int64)
    if p.size != problem.n_cells:
        raise InputError("plan", f"must have {problem.n_cells} cells, got {p.size}")
    cells = np.flatnonzero(p)
    sp = p[cells] - 1
    v = _linear_value(problem)[cells, sp]
    cost = problem.area[cells] * problem.cost[sp]
    density = np.divide(v, cost, out=np.where(v >= 0, FREE, -FREE) * 1.0, where=cost > 0)
    keep = np.lexsort((cells, -density))
    return [(int(cells[i]), int(sp[i])) for i in keep]


# --- Pareto fronts ---------------------------------------------------------------------------------


def prefix_lengths(n: int, steps: int = 20) -> np.ndarray:
    """(steps,) evenly spaced prefix lengths ceil(i n / steps), i = 1..steps (the last is n; repeats when n < steps)."""
    if steps < 1:
        raise InputError("prefix_fronts", f"steps must be >= 1, got {steps}")
    return np.ceil(np.arange(1, steps + 1) * n / steps).astype(np.int64)


def prefix_fronts(problem_truth: Problem, order, steps: int = 20) -> np.ndarray:
    """(steps, 3) (CSP_total kg CO2/yr, BI, IC_total CNY) of the plans formed by the first ``prefix_lengths``
    plantings of ``order`` [(cell, species)], scored with the TRUE problem (the site's suitability), so that
    every method's front is measured with the same yardstick whatever it believed."""
    order = list(order)
    out = np.zeros((steps, 3))
    plan = np.zeros(problem_truth.n_cells, np.int16)
    done = 0
    for i, length in enumerate(prefix_lengths(len(order), steps)):
        for c, s in order[done:length]:
            plan[c] = s + 1
        done = length
        v = objectives(problem_truth, plan)
        out[i] = v["csp_total"], v["bi"], v["ic_total"]
    return out


def pareto_front(points: np.ndarray, maximise=(True, True, False)) -> np.ndarray:
    """The non-dominated rows of (N, K) ``points`` (in their order): a row is dropped when another is at
    least as good in every objective and better in one. ``maximise[k]`` says the direction of column k
    (default: CSP and BI up, IC down). Equal rows do not dominate each other; both stay."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(maximise):
        raise InputError("pareto_front", f"points must be (N, {len(maximise)}), got shape {p.shape}")
    f = np.where(np.asarray(maximise, dtype=bool), -p, p)  # all minimised
    no_worse = (f[:, None, :] <= f[None, :, :]).all(-1)  # [j, i]: j no worse than i everywhere
    better = (f[:, None, :] < f[None, :, :]).any(-1)
    dominated = (no_worse & better).any(0)
    return p[~dominated]


def hypervolume(points: np.ndarray, ref, maximise=(True, True, False), scale=None) -> float:
    """The hypervolume of (N, K) ``points`` against the reference point ``ref`` (pymoo's HV, which minimises).

    Maximised objectives are negated (point and reference alike), so the volume counted is the region a
    point dominates between it and ``ref``: ``ref`` must be worse than the points worth counting (below
    them in a maximised objective, above in a minimised one); points that do not dominate ``ref`` add
    nothing. ``scale`` (K,) divides every objective (after the sign change) so the volume is in units of
    the given reference scales and objectives of different units weigh alike; default 1 (raw units)."""
    from pymoo.indicators.hv import HV

    p = np.asarray(points, dtype=np.float64).reshape(-1, len(maximise))
    sign = np.where(np.asarray(maximise, dtype=bool), -1.0, 1.0)
    s = np.ones(len(maximise)) if scale is None else np.asarray(scale, dtype=np.float64)
    if s.shape != (len(maximise),) or not (s > 0).all():
        raise InputError("hypervolume", f"scale must be {len(maximise)} positive numbers, got {scale}")
    r = np.asarray(ref, dtype=np.float64) * sign / s
    if r.shape != (len(maximise),):
        raise InputError("hypervolume", f"ref must have {len(maximise)} values, got {ref}")
    f = p * sign / s
    f = f[(f < r).all(1)]  # only points that strictly dominate the reference add volume
    return float(HV(ref_point=r).do(f)) if len(f) else 0.0


# --- the random forest baseline (RFR) --------------------------------------------------------------


def _neighbourhood_mean(features: np.ndarray) -> np.ndarray:
    """(F, H, W) mean of each cell's 3x3 neighbourhood (the cell included), over the finite values inside
    the grid: cells at the edge average fewer neighbours rather than a padded value; NaN where none."""
    finite = np.isfinite(features)
    values = np.pad(np.where(finite, features, 0.0), ((0, 0), (1, 1), (1, 1)))
    counts = np.pad(finite.astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    h, w = features.shape[1:]
    total = sum(values[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    n = sum(counts[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


class RandomForestSuitability:
    """The RFR baseline: sklearn's multi-output RandomForestRegressor from cell features to (S,) suitability.

    Inputs per cell: the F raw features and their 3x3 neighbourhood means (2F columns; edge cells average
    the neighbours inside the grid), so the forest sees a little spatial context, as the paper's RFR
    "classic ensemble" has no other way to. Trees are scale-free, so features stay in raw units.
    A missing (non-finite) input is replaced by the training median of its column. ``max_features=1/3``
    is Breiman's regression default (sklearn's 1.0 makes the trees near-identical and 3x slower);
    ``n_jobs=1`` and the fixed seed make fits reproducible. Predictions are clipped to [0, 1].
    """

    def __init__(self, n_estimators: int = 100, max_depth: int | None = None, seed: int = 0,
                 max_features: float | str = 1 / 3, min_samples_leaf: int = 1):
        self.n_estimators, self.max_depth, self.seed = n_estimators, max_depth, seed
        self.max_features, self.min_samples_leaf = max_features, min_samples_leaf
        self.model = None
        self.medians: np.ndarray | None = None
        self.n_features: int | None = None

    @staticmethod
    def inputs(features: np.ndarray) -> np.ndarray:
        """(H*W, 2F) per-cell inputs, cells row-major: raw features then their 3x3 neighbourhood means."""
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 3:
            raise InputError("RandomForestSuitability", f"features must be (F, H, W), got shape {f.shape}")
        x = np.concatenate([f, _neighbourhood_mean(f)])
        return x.reshape(len(x), -1).T

    def fit(self, features: np.ndarray, target: np.ndarray, train_mask: np.ndarray) -> RandomForestSuitability:
        """Fit on the cells of ``train_mask`` (H, W) whose (S, H, W) target is finite for every species."""
        from sklearn.ensemble import RandomForestRegressor

        features, target = np.asarray(features), np.asarray(target, dtype=np.float64)
        train_mask = np.asarray(train_mask, dtype=bool)
        if target.ndim != 3 or features.ndim != 3 or target.shape[1:] != features.shape[1:] \
                or train_mask.shape != features.shape[1:]:
            raise InputError("RandomForestSuitability", f"features {features.shape}, target {target.shape} and "
                             f"train_mask {train_mask.shape} must be (F, H, W), (S, H, W) and (H, W)")
        x = self.inputs(features)
        y = target.reshape(len(target), -1).T
        rows = train_mask.ravel() & np.isfinite(y).all(1)
        if rows.sum() < 2:
            raise InputError("RandomForestSuitability", f"{int(rows.sum())} training cells; need at least 2")
        x = x[rows]
        self.medians = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)
        self.medians = np.where(np.isfinite(self.medians), self.medians, 0.0)
        self.n_features = features.shape[0]
        self.model = RandomForestRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth, max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf, random_state=self.seed, n_jobs=1)
        self.model.fit(self._fill(x), y[rows])
        return self

    def _fill(self, x: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(x), x, self.medians)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(S, H, W) suitability in [0, 1] of every cell."""
        if self.model is None:
            raise InputError("RandomForestSuitability", "predict called before fit")
        features = np.asarray(features)
        if features.ndim != 3 or features.shape[0] != self.n_features:
            raise InputError("RandomForestSuitability",
                             f"features must be ({self.n_features}, H, W) as in fit, got {features.shape}")
        y = self.model.predict(self._fill(self.inputs(features)))
        y = y.reshape(len(y), -1)  # one species: sklearn returns (n,)
        return np.clip(y.T, 0.0, 1.0).reshape(-1, *features.shape[1:]).astype(np.float32)
