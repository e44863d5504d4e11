"""The vegetation plan's learning steps (seed 001, EcoDeep-Green): features, agents, the plan.

* ``train_features`` (rule train_vegplan): the CNN-GNN hybrid on the proxy task, predicting each
  species' suitability of every cell from the normalised planning-grid stack (eq. 9). The cells of
  the training blocks (the tile index, 4:1:1) stand for the paper's field survey: only there is the
  suitability seen. As the paper trains: the CNN and the GNN alone first (``pretrain_epochs``), then
  the fused model from those weights (``joint_epochs``, composite loss eqs. 21-23). The CNN-only and
  GNN-only models of the comparison are the pretrained ones. Saved: the weights, each model's
  predicted suitability (its *belief*) and its per-cell features (the agents' state).
* ``train_agent`` (rule train_vegplan_agent): one DQN per state representation (VEGPLAN_AGENTS),
  trained in the environment scored with that model's belief (the raw-input agent, which has no
  learned model, plans with the paper's own indices CLI x SFI, as MPM does).
* ``make_plan`` (rule plan_vegplan): the CNN-GNN-DRL agent's greedy plan as a COG (species code per
  cell, colour table by life form) and GeoJSON (one polygon per planted cell).

Every plan is scored against the site's suitability (the truth), never against a belief.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from urbaneo.errors import InputError
from urbaneo.grid import grid_of
from urbaneo.models import ecodeep
from urbaneo.presets import ECODEEP, VEGPLAN_AGENTS
from urbaneo.products.vegplan_dqn import StatePlanes, rollout, train_dqn
from urbaneo.products.vegplan_env import PlanningEnv
from urbaneo.products.vegplan_objectives import Problem, Settings, objectives, problem_from_site, with_suitability
from urbaneo.products.vegplan_site import read_site
from urbaneo.training import device, read_model_file, save, seed_everything

log = logging.getLogger(__name__)

FEATURES_FORMAT = "urbaneo-vegplan-features/1"
AGENT_FORMAT = "urbaneo-vegplan-agent/1"
SPLITS = {"train": 1, "val": 2, "test": 3}
KINDS = ("cnn", "gnn", "fusion")  # the learned models, in training order
# which learned model gives each agent its state features and its belief ("drl": none)
AGENT_MODEL = {"cnn_gnn_drl": "fusion", "cnn_drl": "cnn", "gnn_drl": "gnn", "drl": None}


def timings_path(model_path) -> Path:
    """Where a model file's measured times go: beside it, ``<stem>_timings.json`` (kept out of the model file,
    which is byte-reproducible; times are not)."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}_timings.json")


def write_timings(model_path, seconds: dict) -> None:
    import resource

    from urbaneo.artifacts.metrics import write_metrics

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    write_metrics(timings_path(model_path), {"seconds": seconds, "peak_rss_mb": peak})


def read_timings(model_path) -> dict:
    from urbaneo.artifacts.metrics import read_metrics

    return read_metrics(timings_path(model_path))


# --- data --------------------------------------------------------------------------------------------
def normalised(site: xr.Dataset) -> np.ndarray:
    """The feature stack min-max normalised over the city (eq. 9), (F, H, W) float32; NaN -> 0."""
    x = site["features"].values.astype(np.float64)
    lo = np.nanmin(x, axis=(1, 2), keepdims=True)
    span = np.nanmax(x, axis=(1, 2), keepdims=True) - lo
    out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def cell_split(tiles_path, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int8: 1 train, 2 validation, 3 test, 0 in no block. Where blocks overlap (the last row and
    column are shifted inwards) test wins over validation over training, so no test cell is trained on."""
    from urbaneo.tiles import read_index

    index = read_index(tiles_path)
    split = np.zeros(shape, np.int8)
    for name in ("train", "val", "test"):
        for row in index[index["split"] == name].itertuples():
            split[row.row:row.row + row.size, row.col:row.col + row.size] = SPLITS[name]
    if not (split == SPLITS["train"]).any():
        raise InputError(tiles_path, "no training block in the tile index")
    return split


def node_mask(site: xr.Dataset) -> np.ndarray:
    """Cells that are graph nodes: every cell with its features (water included: it shapes neighbours)."""
    return np.isfinite(site["features"].values).all(0)


def hyperparameters(preset: str, max_epochs: int | None = None) -> dict:
    """The preset (presets.ECODEEP), its epochs and DQN episodes capped by ``max_epochs``."""
    if preset not in ECODEEP:
        raise InputError("preset", f"unknown preset {preset!r}; one of {sorted(ECODEEP)}")
    hp = dict(ECODEEP[preset])
    if max_epochs:
        for key in ("pretrain_epochs", "joint_epochs", "dqn_episodes"):
            hp[key] = min(hp[key], max_epochs)
    return hp


def dqn_hyperparameters(hp: dict) -> dict:
    """What ``vegplan_dqn.train_dqn`` reads, from the preset."""
    return {"episodes": hp["dqn_episodes"], "batch_size": hp["dqn_batch_size"], "gamma": hp["gamma"],
            "eps_start": hp["eps_start"], "eps_end": hp["eps_end"], "eps_steps": hp["eps_steps"], "lr": hp["dqn_lr"],
            "lr_end": hp["dqn_lr_min"], "buffer": hp["dqn_replay"], "warmup": hp["dqn_warmup"],
            "train_every": hp["dqn_train_every"], "target_every": hp["dqn_target_update"]}


# --- the CNN-GNN hybrid on the proxy task ---------------------------------------------------------------
def _fit(model, x, graph, target, train, val, hp: dict, epochs: int, what: str, progress: bool) -> dict:
    """Full-city steps (a city is one image and one graph) on the training cells; the validation loss is logged.
    AdamW with the preset's weight decay, the rate annealed (cosine, our choice) from lr to lr_min."""
    opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs), eta_min=hp["lr_min"])
    history = {"epoch": [], "train_loss": [], "val_mse": []}
    for epoch in tqdm(range(epochs), desc=what, disable=not progress):
        model.train()
        out = model(x, graph)
        loss, _ = ecodeep.composite_loss(out, target, train, model, hp["lambda1"], hp["lambda2"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, graph)["suitability"]
            val_mse = float(((pred - target) ** 2).mean(1, keepdim=True)[val].mean()) if val.any() else float("nan")
        history["epoch"].append(epoch)
        history["train_loss"].append(float(loss.detach()))
        history["val_mse"].append(val_mse)
    log.info("%s: train loss %.5f, validation MSE %.5f after %d epochs", what, history["train_loss"][-1],
             history["val_mse"][-1], epochs)
    return history


def build_models(preset: str, n_features: int, n_species: int) -> dict[str, torch.nn.Module]:
    return {kind: ecodeep.build(kind, preset, n_features, n_features, n_species) for kind in KINDS}


def train_features(site_path, tiles_path, out, *, preset: str = "demo", seed: int = 0, max_epochs: int | None = None,
                   progress: bool = False) -> dict:
    """Train the CNN, the GNN, then the fused model; save weights, beliefs and state features to ``out``."""
    site = read_site(site_path)
    hp = hyperparameters(preset, max_epochs)
    x = normalised(site)
    shape = x.shape[1:]
    split = cell_split(tiles_path, shape)
    target_np = site["suitability"].values.astype(np.float32)
    seed_everything(seed)
    nodes = node_mask(site)
    graph = ecodeep.build_graph(x, nodes, tau=hp["graph_tau"], k_similar=hp["graph_k"], seed=seed)
    dev = device()
    xt, graph_t = torch.as_tensor(x, device=dev).unsqueeze(0), graph.to(dev)
    target = torch.as_tensor(target_np, device=dev).unsqueeze(0)
    train = torch.as_tensor(split == SPLITS["train"], device=dev).view(1, 1, *shape)
    val = torch.as_tensor(split == SPLITS["val"], device=dev).view(1, 1, *shape)

    models = {k: m.to(dev) for k, m in build_models(preset, x.shape[0], target_np.shape[0]).items()}
    history, seconds = {}, {}
    for kind in ("cnn", "gnn"):
        t0 = time.perf_counter()
        history[kind] = _fit(models[kind], xt, graph_t, target, train, val, hp, hp["pretrain_epochs"], kind, progress)
        seconds[kind] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the joint stage starts from the pretrained branches (its fusion block and head start afresh)
    models["fusion"].cnn.load_state_dict(models["cnn"].cnn.state_dict())
    models["fusion"].gat.load_state_dict(models["gnn"].gat.state_dict())
    history["fusion"] = _fit(models["fusion"], xt, graph_t, target, train, val, hp, hp["joint_epochs"], "fusion",
                             progress)
    seconds["fusion"] = time.perf_counter() - t0 + seconds["cnn"] + seconds["gnn"]

    beliefs, features = {}, {}
    with torch.no_grad():
        for kind, model in models.items():
            model.eval()
            o = model(xt, graph_t)
            beliefs[kind] = o["suitability"][0].float().cpu()
            features[kind] = o["features"][0].float().cpu()
    data = {
        "format": FEATURES_FORMAT, "preset": preset, "seed": seed, "hyperparameters": hp,
        "feature_names": [str(f) for f in site["feature"].values], "split": torch.as_tensor(split),
        "weights": {k: {n: t.cpu() for n, t in m.state_dict().items()} for k, m in models.items()},
        "beliefs": beliefs, "features": features, "history": history,
        "complexity": {**{k: ecodeep.complexity(m.cpu(), (xt.cpu(), graph_t.cpu())) for k, m in models.items()},
                       **paper_complexity(x, nodes, target_np.shape[0], seed)},
    }
    save(data, out)
    write_timings(out, seconds)
    return data


PAPER_CROP = 12  # cells a side of the crop the paper preset's models are counted on


def paper_complexity(x: np.ndarray, valid: np.ndarray, n_species: int, seed: int) -> dict:
    """Parameters and GFLOPs of the `paper` preset's models for this city, so the metrics show the paper's
    architecture even where it is not trained. Counted on a PAPER_CROP-cell square of the city (every
    model is per cell, so its work grows with the cells) and scaled to the whole city: ``gflops_per_sample``
    is one pass over the city, ``gflops_per_cell`` the crop's count per cell."""
    hp = hyperparameters("paper")
    crop = x[:, :PAPER_CROP, :PAPER_CROP]
    cells = crop.shape[1] * crop.shape[2]
    graph = ecodeep.build_graph(crop, valid[:PAPER_CROP, :PAPER_CROP], tau=hp["graph_tau"], k_similar=hp["graph_k"],
                                seed=seed)
    xt = torch.as_tensor(crop).unsqueeze(0)
    out = {}
    for kind, model in build_models("paper", x.shape[0], n_species).items():
        out[f"paper_{kind}"] = ecodeep.complexity(model, (xt, graph))
    static = model.feature_dim + 4 * n_species + 1  # the fused features and static_state's planes
    qnet = ecodeep.build_planner_q("paper", static, StatePlanes.local_channels, n_species)
    out["paper_qnet"] = ecodeep.complexity(qnet, (torch.zeros(1, static, *crop.shape[1:]),
                                                  torch.zeros(1, StatePlanes.local_channels, *crop.shape[1:]),
                                                  torch.zeros(1, n_species + 1)))
    for c in out.values():
        c["gflops_per_cell"] = c["gflops_per_sample"] / cells
        c["gflops_per_sample"] = c["gflops_per_cell"] * x.shape[1] * x.shape[2]
    return out


def read_features(path) -> dict:
    return read_model_file(path, FEATURES_FORMAT, "EcoDeep-Green features")


def stored(data: dict) -> tuple[dict, dict]:
    """The beliefs and state features a features file holds, (S, H, W) and (D, H, W) numpy arrays per model."""
    return ({k: v.numpy() for k, v in data["beliefs"].items()}, {k: v.numpy() for k, v in data["features"].items()})


def load_models(data: dict, site: xr.Dataset) -> dict[str, torch.nn.Module]:
    """The three trained models of a features file, in eval mode on the CPU."""
    models = build_models(data["preset"], site.sizes["feature"], site.sizes["species"])
    for kind, model in models.items():
        model.load_state_dict(data["weights"][kind])
        model.eval()
    return models


def infer(models: dict, x: np.ndarray, site: xr.Dataset, hp: dict, seed: int) -> tuple[dict, dict]:
    """Beliefs and state features of every model on a (possibly perturbed) normalised stack."""
    graph = ecodeep.build_graph(x, node_mask(site), tau=hp["graph_tau"], k_similar=hp["graph_k"], seed=seed)
    xt = torch.as_tensor(x).unsqueeze(0)
    beliefs, features = {}, {}
    with torch.no_grad():
        for kind, model in models.items():
            o = model(xt, graph)
            beliefs[kind] = o["suitability"][0].numpy()
            features[kind] = o["features"][0].numpy()
    return beliefs, features


# --- agents --------------------------------------------------------------------------------------------
def agent_inputs(agent: str, site: xr.Dataset, beliefs: dict, features: dict, x: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(belief (S, H, W), state features (D, H, W)) of ``agent``."""
    kind = AGENT_MODEL[agent]
    if kind is None:
        return site["rule_suitability"].values.astype(np.float32), x
    return np.asarray(beliefs[kind], np.float32), np.asarray(features[kind], np.float32)


def _env(problem: Problem, static: np.ndarray, values: dict, seed: int) -> PlanningEnv:
    # copy_features=False: the agents read the static planes directly, not from the observation
    return PlanningEnv(problem, static, seed=seed, copy_features=False, stop_action=True, **reward_weights(values))


def action_values(problem: Problem) -> dict:
    """What each action is worth alone, and the reward scale derived from it.

    gains (n, S): the additive part of eq. 25's composite change of planting species s on cell c,
    w_csp dCSP / norm_csp + w_esv dESV / norm_esv (BI, CER and the cost per m2 are not additive: the
    network learns them); cost (n, S) CNY. Taking cells best gain per CNY first until the budget runs
    out buys ``actions`` plantings of median gain g and median cost c. ``prior`` = alpha x gain per CNY x c,
    the action ranked as a budget-limited (greedy) planner ranks it, in reward units; ``alpha``, eq. 30's
    weight, makes g worth 0.1 (rewards of order 0.1 rather than 1e-4). The paper gives no alpha, beta or
    penalty coefficients: these are our choices.
    """
    w = problem.settings.weight
    area = problem.area[:, None]
    cost = area * problem.cost[None, :]
    gains = (w.get("csp", 0) * area * problem.csp_rate * problem.suitability / problem.norms["csp"]
             + w.get("esv", 0) * area * problem.esv * problem.suitability / problem.norms["esv"])
    feasible = problem.compatible & (cost > 0)
    gains = np.where(feasible, gains, 0.0)
    ratio = np.where(feasible, gains / np.maximum(cost, 1e-9), 0.0)
    best = ratio.max(1)  # each cell's best species
    order = np.argsort(-best, kind="stable")
    order = order[best[order] > 0]
    if order.size == 0:
        return {"gains": gains, "cost": cost, "prior": np.zeros_like(gains), "alpha": 1.0, "actions": 0}
    species = ratio[order].argmax(1)
    k = int(np.searchsorted(np.cumsum(cost[order, species]), problem.budget))  # cells the budget buys
    k = min(max(k, 1), order.size)
    typical_gain = float(np.median(gains[order[:k], species[:k]]))
    typical_cost = float(np.median(cost[order[:k], species[:k]]))
    alpha = 0.1 / typical_gain if typical_gain > 0 else 1.0
    return {"gains": gains, "cost": cost, "prior": alpha * ratio * typical_cost, "alpha": alpha, "actions": k}


def reward_weights(values: dict) -> dict:
    """Eq. 30's alpha and beta and eq. 28's starting penalty coefficient, on one scale: a typical step's
    reward is 0.1, the Pareto-dominance bonus a tenth of that, a unit of violation costs 0.01 a step."""
    return {"alpha": values["alpha"], "beta": 0.01, "lambda0": 0.01}


def static_state(feats: np.ndarray, problem: Problem, values: dict) -> np.ndarray:
    """The static planes of the agent's state (C, H, W): the method's features; what its belief says each
    action is worth alone (gain, gain per CNY) and costs, each scaled to at most 1 in magnitude; the
    plantable area; last, the S prior planes of :class:`urbaneo.models.ecodeep.PlanningQ` (in reward units)."""
    h, w = problem.shape
    per_cny = values["gains"] / np.maximum(values["cost"], 1e-9)
    planes = [feats.reshape(-1, h, w)]
    for value in (values["gains"], per_cny, values["cost"], problem.area[:, None]):
        value = np.where(problem.area[:, None] > 0, value, 0.0)
        scale = float(np.abs(value).max()) or 1.0
        planes.append((value / scale).T.reshape(-1, h, w))
    planes.append(values["prior"].T.reshape(-1, h, w))
    return np.concatenate(planes).astype(np.float32)


def build_agent(preset: str, static: np.ndarray, problem: Problem, life_forms):
    """(PlanningQ, StatePlanes) of an agent whose static planes are ``static``."""
    planes = StatePlanes.of(problem, life_forms)
    qnet = ecodeep.build_planner_q(preset, static.shape[0], planes.local_channels, planes.n_species)
    return qnet, planes


def train_agent(site_path, features_path, agent: str, out, *, settings: Settings, preset: str = "demo", seed: int = 0,
                max_epochs: int | None = None, progress: bool = False) -> dict:
    if agent not in VEGPLAN_AGENTS:
        raise InputError("agent", f"unknown agent {agent!r}; one of {', '.join(VEGPLAN_AGENTS)}")
    site = read_site(site_path)
    data = read_features(features_path)
    hp = hyperparameters(preset, max_epochs)
    x = normalised(site)
    belief, feats = agent_inputs(agent, site, *stored(data), x)
    truth = problem_from_site(site, settings)
    problem = with_suitability(truth, belief.reshape(belief.shape[0], -1).T)
    seed_everything(seed)
    t0 = time.perf_counter()
    values = action_values(problem)
    static = static_state(feats, problem, values)
    qnet, planes = build_agent(preset, static, problem, site["life_form"].values)
    dqn = dqn_hyperparameters(hp)
    history = train_dqn(_env(problem, static, values, seed), qnet, planes, static, dqn, seed=seed,
                        progress=progress)
    seconds = time.perf_counter() - t0
    result = {"format": AGENT_FORMAT, "agent": agent, "preset": preset, "seed": seed, "hyperparameters": dqn,
              "settings": settings.as_dict(), "weights": qnet.state_dict(), "history": history}
    save(result, out)
    write_timings(out, {agent: seconds})
    return result


def read_agent(path) -> dict:
    return read_model_file(path, AGENT_FORMAT, "EcoDeep-Green agent")


def agent_plan(agent_data: dict, site: xr.Dataset, beliefs: dict, features: dict, x: np.ndarray, truth: Problem,
               seed: int = 0) -> tuple[np.ndarray, list, Problem]:
    """The greedy plan of a trained agent (and its planting order and belief problem)."""
    agent = agent_data["agent"]
    belief, feats = agent_inputs(agent, site, beliefs, features, x)
    problem = with_suitability(truth, belief.reshape(belief.shape[0], -1).T)
    values = action_values(problem)
    static = static_state(feats, problem, values)
    qnet, planes = build_agent(agent_data["preset"], static, problem, site["life_form"].values)
    qnet.load_state_dict(agent_data["weights"])
    plan, order, _ = rollout(_env(problem, static, values, seed), qnet, planes, static, seed=seed)
    return plan, order, problem


# --- the plan ------------------------------------------------------------------------------------------------
def life_form_colours(site: xr.Dataset) -> dict[int, tuple[int, int, int, int]]:
    """Plan code -> RGBA: a hue per life form (trees green, bamboo teal, shrubs olive, grass yellow), lighter
    for each further species of the form; 0 (nothing new) transparent."""
    base = {"tree": (27, 120, 55), "bamboo": (1, 133, 113), "shrub": (128, 128, 0), "grass": (210, 190, 40)}
    seen: dict[str, int] = {}
    colours = {0: (0, 0, 0, 0)}
    for code, form in enumerate(site["life_form"].values, start=1):
        k = seen[form] = seen.get(form, -1) + 1
        r, g, b = base.get(str(form), (120, 120, 120))
        t = min(0.6, 0.12 * k)  # mix towards white
        colours[code] = (int(r + (255 - r) * t), int(g + (255 - g) * t), int(b + (255 - b) * t), 255)
    return colours


def write_plan(plan: np.ndarray, site: xr.Dataset, truth: Problem, tif, geojson) -> None:
    """The plan as a COG (uint8 species code per cell, 0 = nothing new) and as GeoJSON polygons."""
    import geopandas as gpd
    import shapely

    from urbaneo.artifacts.cog import write_cog
    from urbaneo.artifacts.vector import write_vector

    grid = grid_of(site["plantable_m2"])
    write_cog(tif, plan.astype(np.uint8), grid, nodata=None, band_names="species code (0: no new planting)",
              colormap=life_form_colours(site),
              tags={"species": ";".join(f"{i + 1}={sid}" for i, sid in enumerate(site["species"].values))})
    rows, cols = np.nonzero(plan)
    x0 = grid.xmin + cols * grid.res
    y1 = grid.ymax - rows * grid.res
    codes = plan[rows, cols].astype(int) - 1
    area = truth.area.reshape(plan.shape)[rows, cols]
    suit = truth.suitability.reshape(*plan.shape, -1)[rows, cols, codes] if len(codes) else np.zeros(0)
    gdf = gpd.GeoDataFrame({
        "row": rows.astype(int), "col": cols.astype(int), "code": codes + 1,
        "species_id": site["species"].values[codes].astype(str) if len(codes) else np.zeros(0, str),
        "scientific_name": site["scientific_name"].values[codes].astype(str) if len(codes) else np.zeros(0, str),
        "life_form": site["life_form"].values[codes].astype(str) if len(codes) else np.zeros(0, str),
        "area_m2": area.astype(float), "suitability": np.asarray(suit, float).round(4),
    }, geometry=shapely.box(x0, y1 - grid.res, x0 + grid.res, y1), crs=grid.crs)
    write_vector(geojson, gdf, sort_by=["row", "col"])


def make_plan(site_path, features_path, agent_path, out_tif, *, settings: Settings, seed: int = 0) -> dict:
    site = read_site(site_path)
    data = read_features(features_path)
    agent = read_agent(agent_path)
    truth = problem_from_site(site, settings)
    plan, order, _ = agent_plan(agent, site, *stored(data), normalised(site), truth, seed)
    out_tif = Path(out_tif)
    write_plan(plan, site, truth, out_tif, out_tif.with_suffix(".geojson"))
    return {"planted_cells": len(order), "objectives": objectives(truth, plan), "note": truth.note}
