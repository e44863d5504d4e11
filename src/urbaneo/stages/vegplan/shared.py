"""What several of the vegetation plan's steps share (seed 001, EcoDeep-Green): the features and agent
files (formats, reading, their timings), the normalised planning-grid stack, the learned models, and an
agent's state, environment and greedy plan.

The steps: ``train`` (train.py) fits the CNN-GNN hybrid and saves its beliefs and state features,
``agent`` (agent.py) trains one DQN per state representation, ``plan`` (plan.py) writes the
CNN-GNN-DRL agent's plan; ``evaluate`` and ``robustness`` plan again with every method.

Every plan is scored against the site's suitability (the truth), never against a belief.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ...errors import InputError
from ...models import ecodeep
from ...presets import ECODEEP
from ...training import read_model_file
from .dqn import StatePlanes, rollout
from .env import PlanningEnv
from .objectives import Problem, with_suitability

FEATURES_FORMAT = "urbaneo-vegplan-features/1"
AGENT_FORMAT = "urbaneo-vegplan-agent/1"
SPLITS = {"train": 1, "val": 2, "test": 3}
KINDS = ("cnn", "gnn", "fusion")  # the learned models, in training order
# which learned model gives each agent its state features and its belief ("drl": none)
AGENT_MODEL = {"cnn_gnn_drl": "fusion", "cnn_drl": "cnn", "gnn_drl": "gnn", "drl": None}
SITE_HELP = "resources/<run>/vegplan/<city>/site.nc"
FEATURES_HELP = "resources/<run>/vegplan/<city>/features.pt"


def timings_path(model_path) -> Path:
    """Where a model file's measured times go: beside it, ``<stem>_timings.json`` (kept out of the model file,
    which is byte-reproducible; times are not)."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}_timings.json")


def write_timings(model_path, seconds: dict) -> None:
    import resource

    from ...artifacts.metrics import write_metrics

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    write_metrics(timings_path(model_path), {"seconds": seconds, "peak_rss_mb": peak})


def read_timings(model_path) -> dict:
    from ...artifacts.metrics import read_metrics

    return read_metrics(timings_path(model_path))


# --- data --------------------------------------------------------------------------------------------
def normalised(site: xr.Dataset) -> np.ndarray:
    """The feature stack min-max normalised over the city (eq. 9), (F, H, W) float32; NaN -> 0."""
    x = site["features"].values.astype(np.float64)
    lo = np.nanmin(x, axis=(1, 2), keepdims=True)
    span = np.nanmax(x, axis=(1, 2), keepdims=True) - lo
    out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


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


def add_training_args(p) -> None:
    """The options ``hyperparameters`` reads (and the seed)."""
    p.add_argument("--preset", default="demo", choices=sorted(ECODEEP))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs and DQN episodes")


def build_models(preset: str, n_features: int, n_species: int) -> dict[str, torch.nn.Module]:
    return {kind: ecodeep.build(kind, preset, n_features, n_features, n_species) for kind in KINDS}


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


def agent_env(problem: Problem, static: np.ndarray, values: dict, seed: int) -> PlanningEnv:
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
    plan, order, _ = rollout(agent_env(problem, static, values, seed), qnet, planes, static, seed=seed)
    return plan, order, problem
