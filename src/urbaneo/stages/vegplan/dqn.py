"""The decision module of seed 001 (EcoDeep-Green): a DQN that plants one (cell, species) per step.

The environment is :class:`urbaneo.stages.vegplan.env.PlanningEnv` (the MDP of the paper: state =
the configuration so far + the static features, action = (cell, species) over feasible pairs only,
reward eqs. 28-30). The Q-network is :class:`urbaneo.models.ecodeep.PlanningQ` (eqs. 26-27 on the
static planes, plus two light branches for the configuration): it sees

* the static planes (built by ``urbaneo.stages.vegplan.shared.static_state``): the method's features
  (CNN-GNN fused, CNN, GNN or the raw inputs) and what its belief says each action is worth alone;
* the configuration, computed from the plan on the fly: planted or not and the life form planted
  around each cell, the share of each species in the planted area and the unspent budget.

DQN as in the paper: experience replay, a target network, epsilon-greedy decaying linearly, Adam with
the rate decaying (linearly, our choice) from ``lr`` to ``lr_end``, discount 0.98, Huber TD loss. The
greedy target's max runs over the next state's feasible actions only (masks are stored, bit-packed,
with each transition). Everything is seeded: the same problem and settings give the same weights.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .env import PlanningEnv
from .objectives import Problem

log = logging.getLogger(__name__)

LIFE_FORMS = ("tree", "bamboo", "shrub", "grass")


@dataclass
class StatePlanes:
    """The configuration part of the state, from plans (B, H, W) on the fly: local planes (planted, life form
    one-hot; (B, 5, H, W)) and the global vector (each species' share of the planted area, the unspent
    share of the budget; (B, S + 1))."""

    area: torch.Tensor  # (n,) plantable m2
    form_of: torch.Tensor  # (S + 1,) life-form index + 1 of each plan code; 0 for "nothing planted"
    n_species: int

    @classmethod
    def of(cls, problem: Problem, life_forms) -> StatePlanes:
        # matched as site.py matches them (trimmed, any case); an unknown form shares the last (grass) plane
        forms = [str(f).strip().lower() for f in life_forms]
        forms = [LIFE_FORMS.index(f) + 1 if f in LIFE_FORMS else len(LIFE_FORMS) for f in forms]
        return cls(torch.as_tensor(problem.area, dtype=torch.float32), torch.tensor([0, *forms]), len(forms))

    local_channels = 1 + len(LIFE_FORMS)

    def __call__(self, plans: torch.Tensor, budget_left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = plans.shape[0]
        codes = plans.long()
        forms = self.form_of[codes].unsqueeze(1)  # (B, 1, H, W), 0 where nothing is planted
        local = torch.cat([forms > 0, forms == torch.arange(1, len(LIFE_FORMS) + 1).view(1, -1, 1, 1)], 1).float()
        per_species = torch.zeros(b, self.n_species + 1).scatter_add_(1, codes.view(b, -1),
                                                                      self.area.expand(b, -1))[:, 1:]
        shares = per_species / per_species.sum(1, keepdim=True).clamp_min(1.0)
        return local, torch.cat([shares, budget_left.view(b, 1).float()], 1)


@dataclass
class Replay:
    """A ring buffer of transitions; plans as int16, next-state masks bit-packed."""

    capacity: int
    shape: tuple[int, int]
    n_actions: int
    rng: np.random.Generator
    size: int = 0
    pos: int = 0
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        h, w = self.shape
        self.data = {
            "plan": np.zeros((self.capacity, h, w), np.int16), "left": np.zeros(self.capacity, np.float32),
            "action": np.zeros(self.capacity, np.int64), "reward": np.zeros(self.capacity, np.float32),
            "next_plan": np.zeros((self.capacity, h, w), np.int16), "next_left": np.zeros(self.capacity, np.float32),
            "done": np.zeros(self.capacity, np.float32),
            "next_mask": np.zeros((self.capacity, (self.n_actions + 7) // 8), np.uint8),
        }

    def add(self, plan, left, action, reward, next_plan, next_left, done, next_mask) -> None:
        d, i = self.data, self.pos
        d["plan"][i], d["left"][i], d["action"][i], d["reward"][i] = plan, left, action, reward
        d["next_plan"][i], d["next_left"][i], d["done"][i] = next_plan, next_left, float(done)
        d["next_mask"][i] = np.packbits(next_mask)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        idx = self.rng.integers(0, self.size, batch)
        out = {k: torch.as_tensor(v[idx]) for k, v in self.data.items() if k != "next_mask"}
        masks = np.unpackbits(self.data["next_mask"][idx], axis=1, count=self.n_actions).astype(bool)
        out["next_mask"] = torch.as_tensor(masks)
        return out


def _q_values(qnet, static: torch.Tensor, planes: StatePlanes, plans: torch.Tensor, left: torch.Tensor,
              context: torch.Tensor | None = None) -> torch.Tensor:
    """Q of every (cell, species) as (B, n * S), the environment's action order (cell * S + species)."""
    local, glob = planes(plans, left)
    q = qnet(static, local, glob, context=context)  # (B, S, H, W)
    q = q.flatten(2).transpose(1, 2).reshape(len(plans), -1)
    return torch.cat([q, q.new_zeros(len(plans), 1)], 1)  # the stop action ends the episode: its Q is its reward, 0


def _masked_argmax(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return q.masked_fill(~mask, float("-inf")).argmax(-1)


def _mask(env: PlanningEnv) -> np.ndarray:
    """The environment's action mask in the network's action order: the stop action last, False where the
    environment has none (Q always has the stop column)."""
    mask = env.action_masks()
    return mask if env.stop_action else np.append(mask, False)


def _state(obs) -> tuple[np.ndarray, float]:
    return np.asarray(obs["plan"], np.int16), float(np.asarray(obs["budget_left"]).reshape(-1)[0])


class Acting:
    """Greedy Q over the feasible actions of one state, with A(context) cached until the weights change."""

    def __init__(self, qnet, static: torch.Tensor, planes: StatePlanes):
        self.qnet, self.static, self.planes, self.context = qnet, static, planes, None

    def invalidate(self) -> None:
        self.context = None

    def __call__(self, plan: np.ndarray, left: float, mask: np.ndarray) -> int:
        with torch.no_grad():
            self.qnet.eval()
            if self.context is None:
                self.context = self.qnet.context(self.static)
            q = _q_values(self.qnet, self.static, self.planes, torch.as_tensor(plan)[None], torch.tensor([left]),
                          context=self.context)
        return int(_masked_argmax(q, torch.as_tensor(mask)[None])[0])


def train_dqn(env: PlanningEnv, qnet: torch.nn.Module, planes: StatePlanes, static: np.ndarray, hp: dict, *,
              seed: int, progress: bool = False) -> dict:
    """Train ``qnet`` (a :class:`urbaneo.models.ecodeep.PlanningQ`) on ``env`` for ``hp['episodes']`` episodes.

    ``static``: the static planes of the state (C, H, W). Returns the history, one entry per episode.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    static_t = torch.as_tensor(static, dtype=torch.float32).unsqueeze(0)
    target = _copy(qnet)
    opt = torch.optim.Adam(qnet.parameters(), lr=hp["lr"])
    memory = Replay(hp["buffer"], tuple(static.shape[1:]), env.problem.n_cells * env.n_species + 1, rng)
    act = Acting(qnet, static_t, planes)
    history = {"episode": [], "return": [], "steps": [], "composite": [], "loss": [], "epsilon": [], "greedy": []}
    best = (_greedy_composite(env, qnet, planes, static), copy.deepcopy(qnet.state_dict()), -1)
    history["untrained_greedy"] = best[0]
    step = updates = 0
    bar = tqdm(range(hp["episodes"]), desc="dqn", disable=not progress)
    for episode in bar:
        obs, info = env.reset(seed=int(rng.integers(2**31)))
        plan, left = _state(obs)
        mask = _mask(env)
        ret, losses, n = 0.0, [], 0
        done = not mask.any()
        while not done:
            if rng.random() < _epsilon(hp, step):
                action = int(rng.choice(np.flatnonzero(mask)))
            else:
                action = act(plan, left, mask)
            obs, reward, terminated, truncated, info = env.step(action)
            next_plan, next_left = _state(obs)
            next_mask = _mask(env)
            done = terminated or truncated
            memory.add(plan, left, action, reward, next_plan, next_left, terminated, next_mask)
            plan, left, mask = next_plan, next_left, next_mask
            ret += float(reward)
            step += 1
            n += 1
            if memory.size >= hp["warmup"] and step % hp["train_every"] == 0:
                losses.append(_update(qnet, target, opt, memory, static_t, planes, hp))
                act.invalidate()
                updates += 1
                _set_lr(opt, hp, step)
                if updates % hp["target_every"] == 0:
                    target.load_state_dict(qnet.state_dict())
        history["episode"].append(episode)
        history["return"].append(ret)
        history["steps"].append(n)
        history["composite"].append(float(info.get("objectives", {}).get("composite", float("nan"))))
        history["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        history["epsilon"].append(_epsilon(hp, step))
        greedy = _greedy_composite(env, qnet, planes, static)
        history["greedy"].append(greedy)
        if greedy > best[0]:
            best = (greedy, copy.deepcopy(qnet.state_dict()), episode)
        bar.set_postfix(ret=f"{ret:.3f}", steps=n, greedy=f"{greedy:.4f}")
        log.info("episode %d: return %.4f over %d steps, composite %.4f, greedy policy %.4f", episode, ret, n,
                 history["composite"][-1], greedy)
    # keep the weights whose greedy plan scored best in the training environment (the method's belief; the
    # untrained network is the prior's plan, so training never returns a worse policy than it started from)
    qnet.load_state_dict(best[1])
    history["kept_episode"] = best[2]
    return history


def _greedy_composite(env: PlanningEnv, qnet, planes: StatePlanes, static: np.ndarray) -> float:
    """The composite (in ``env``'s belief) of the greedy policy's plan, without adapting the penalties."""
    adapt, env.adapt = env.adapt, False
    try:
        _, _, info = rollout(env, qnet, planes, static)
    finally:
        env.adapt = adapt
    return float(info.get("objectives", {}).get("composite", float("-inf")))


def _epsilon(hp: dict, step: int) -> float:
    frac = min(1.0, step / max(1, hp["eps_steps"]))
    return hp["eps_start"] + frac * (hp["eps_end"] - hp["eps_start"])


def _set_lr(opt, hp: dict, step: int) -> None:
    """Adam's rate decays linearly from lr to lr_end over the exploration schedule (the paper: 3e-4 to 1e-5)."""
    frac = min(1.0, step / max(1, hp["eps_steps"]))
    for group in opt.param_groups:
        group["lr"] = hp["lr"] + frac * (hp["lr_end"] - hp["lr"])


def _copy(qnet: torch.nn.Module) -> torch.nn.Module:
    target = copy.deepcopy(qnet)
    target.eval()
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def _update(qnet, target, opt, memory: Replay, static: torch.Tensor, planes: StatePlanes, hp: dict) -> float:
    """One TD step: Q(s, a) at the action cells only (the wide network runs once), max over feasible a' of
    the target network's Q(s', a') on the full map."""
    batch = memory.sample(hp["batch_size"])
    n_species = planes.n_species
    stop = batch["action"] == memory.n_actions - 1  # Q(stop) = 0 exactly, nothing to learn
    action = torch.where(stop, torch.zeros_like(batch["action"]), batch["action"])
    cells, species = action // n_species, action % n_species
    qnet.train()
    local, glob = planes(batch["plan"], batch["left"])
    q_taken = qnet(static, local, glob, cells=cells).gather(1, species.view(-1, 1)).squeeze(1)
    q_taken = torch.where(stop, torch.zeros_like(q_taken), q_taken)
    with torch.no_grad():
        q_next = _q_values(target, static, planes, batch["next_plan"], batch["next_left"])
        # a terminal state (nothing feasible) has an all-False mask: its max is replaced by 0 below
        best = q_next.masked_fill(~batch["next_mask"], float("-inf")).max(1).values
        best = torch.where(torch.isfinite(best), best, torch.zeros_like(best))
        y = batch["reward"] + hp["gamma"] * (1.0 - batch["done"]) * best
    loss = F.smooth_l1_loss(q_taken, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(qnet.parameters(), 10.0)
    opt.step()
    return float(loss.detach())


def rollout(env: PlanningEnv, qnet: torch.nn.Module, planes: StatePlanes, static: np.ndarray, *, seed: int = 0
            ) -> tuple[np.ndarray, list[tuple[int, int]], dict]:
    """The greedy policy's plan: argmax Q over the feasible actions until nothing is feasible.

    Returns the plan, the (cell, species) planting order (its prefixes trace the Pareto front) and
    the environment's last info.
    """
    act = Acting(qnet, torch.as_tensor(static, dtype=torch.float32).unsqueeze(0), planes)
    obs, info = env.reset(seed=seed)
    plan, left = _state(obs)
    mask = _mask(env)
    order: list[tuple[int, int]] = []
    done = not mask.any()
    while not done:
        action = act(plan, left, mask)
        obs, _, terminated, truncated, info = env.step(action)
        if action < env.problem.n_cells * env.n_species:  # not the stop action
            order.append((action // env.n_species, action % env.n_species))
        plan, left = _state(obs)
        mask = _mask(env)
        done = terminated or truncated
    return plan, order, info
