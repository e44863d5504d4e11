"""Seed 001's planning MDP (eqs. 24-30) as a gymnasium environment.

One step plants one species on one cell: action ``cell * S + species`` (cell flat row-major, species
0-based table order). The transition is deterministic (the paper's P = 1). ``action_masks()`` (the
sb3-contrib convention, also ``info["action_mask"]``) is the (n*S,) bool of the actions that keep
every hard constraint (budget, compatibility, maintenance, species share; see objectives), so
a masked agent never breaks them. An unmasked action is a no-op step (the plan is unchanged, the
reward is minus the penalties and ``invalid_penalty``; ``info["invalid"]``).

Reward of the step X_{t-1} -> X_t:

* ``reward="scalar"`` (eq. 24): F(X_t) - F(X_{t-1}), F the composite of eq. 25;
* ``reward="pareto"`` (eq. 30): alpha (F(X_t) - F(X_{t-1})) + beta I_dom. Our f_k are already divided by
  their norm_k (problem.norms), so alpha sum_k w_k (f_k(X_t) - f_k(X_{t-1})) / norm_k is alpha times the
  composite change (weights summing to 1). I_dom = 1 when X_t Pareto-dominates X_{t-1} over
  (CSP_total, BI, ESV_total, CER): the benefits the paper's reward cares about. Cost is left out:
  planting always raises IC, so dominance over (CSP, BI, -IC) could never happen.

Both subtract eq. 28's penalty ``sum_i lambda_i max(0, g_i(X_t))`` over the constraints of
objectives.constraints (the hard ones stay at 0 under masking, so in practice it is the
biodiversity threshold min_shannon - H'). Eq. 29 adapts the coefficients,
``lambda_i <- lambda_i (1 + delta sign(g_i(X_T)))`` clipped to [lambda_min, lambda_max], once per
episode, at its end, from the final plan X_T: one episode sees fixed coefficients, so its returns are
comparable step to step; ``adapt=False`` keeps them fixed (the "dynamic constraint handling" ablation).
The default lambda_0 = 0.01 puts the per-step penalty of a plan lacking one nat of Shannon at the
order of a few steps' composite gains (a plan's composite rises by ~0.5 over hundreds of steps).

Observation (gymnasium.spaces.Dict): ``features`` (D, H, W) float32, the state features given (the
CNN-GNN output), a fresh copy every step as gymnasium requires (``copy_features=False`` hands out the
same read-only array instead: much faster for a large D, but breaks gymnasium's no-shared-data rule),
``plan`` (H, W) int16 (0 none, k species k-1),
``budget_left`` (1,) float32, the share of the budget not yet spent, in [0, 1].
With ``stop_action=True`` there is one more action, index n*S, that ends the episode (reward 0).
The episode terminates when no action is feasible (budget, cap or cells exhausted) and is truncated
after ``max_steps`` steps (default: the cells that can take some species). At its end info holds
"plan" (H, W), "objectives" (objectives.objectives of the plan), "constraints" and "lambdas"
(the coefficients this episode used; ``env.lambdas`` holds the adapted ones for the next).
A step costs O(S + 8) for the running sums plus one vectorised (n, S) comparison for the mask.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ...errors import InputError
from .objectives import CONSTRAINTS, Problem, Tracker

DOMINANCE = ("csp_total", "bi", "esv_total", "cer")  # higher is better for all four


def dominates(after: dict, before: dict, keys=DOMINANCE) -> bool:
    """True when ``after`` is at least as good as ``before`` on every key and better on one."""
    a = np.array([after[k] for k in keys])
    b = np.array([before[k] for k in keys])
    tol = 1e-12 * np.maximum(np.abs(a), np.abs(b))
    return bool((a >= b - tol).all() and (a > b + tol).any())


class PlanningEnv(gym.Env):
    """Plant one (cell, species) per step until nothing feasible is left (module docstring)."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, problem: Problem, state_features: np.ndarray, *, reward: str = "pareto", delta: float = 0.05,
                 alpha: float = 1.0, beta: float = 0.1, seed: int | None = None, max_steps: int | None = None,
                 lambda0: float = 0.01, lambda_min: float = 1e-4, lambda_max: float = 1.0, adapt: bool = True,
                 invalid_penalty: float = 0.0, copy_features: bool = True, stop_action: bool = False):
        if reward not in ("pareto", "scalar"):
            raise InputError("reward", f"must be 'pareto' or 'scalar', got {reward!r}")
        h, w = problem.shape
        feats = np.asarray(state_features, dtype=np.float32)
        if feats.ndim != 3 or feats.shape[1:] != (h, w):
            raise InputError("state_features", f"must be (D, {h}, {w}), got {feats.shape}")
        if not np.isfinite(feats).all():
            raise InputError("state_features", "has NaN or infinite values")
        if not 0 <= delta < 1:
            raise InputError("delta", f"must be in [0, 1), got {delta}")
        if not 0 < lambda_min <= lambda0 <= lambda_max:
            raise InputError("lambda0", f"need 0 < lambda_min <= lambda0 <= lambda_max, got "
                                        f"{lambda_min}, {lambda0}, {lambda_max}")
        self.problem = problem
        self.features = feats.copy()
        self.features.setflags(write=False)  # handed out every step: nobody may change it
        self.reward_kind, self.delta, self.alpha, self.beta = reward, float(delta), float(alpha), float(beta)
        self.adapt, self.invalid_penalty, self.copy_features = bool(adapt), float(invalid_penalty), bool(copy_features)
        self.lambda_min, self.lambda_max = float(lambda_min), float(lambda_max)
        self.lambdas = {k: float(lambda0) for k in CONSTRAINTS}
        self.n_species = problem.n_species
        self.max_steps = int(max_steps) if max_steps is not None else max(int(problem.compatible.any(1).sum()), 1)
        # stop_action: one more action, n * S, that ends the episode with reward 0 (always feasible): the planner
        # may keep budget unspent when planting more would lower the objectives (greedy planners stop there too)
        self.stop_action = bool(stop_action)
        self.action_space = spaces.Discrete(problem.n_cells * self.n_species + self.stop_action, seed=seed)
        self.observation_space = spaces.Dict({
            # the features never change, so their own range bounds them (finite bounds, no checker warning)
            "features": spaces.Box(float(feats.min(initial=0.0)), float(feats.max(initial=0.0)), feats.shape,
                                   np.float32),
            "plan": spaces.Box(0, self.n_species, (h, w), np.int16),
            "budget_left": spaces.Box(0.0, 1.0, (1,), np.float32),
        }, seed=seed)
        self.episodes = 0
        self._start()

    # -- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._start()
        self.episodes += 1
        return self._obs(), self._info()

    def step(self, action):
        a = int(action)
        if not 0 <= a < self.action_space.n:
            raise InputError("action", f"{a} outside 0..{self.action_space.n - 1}")
        if self._done:  # stepping an ended episode is undefined in gymnasium; ours: a no-op that stays ended
            return self._obs(), 0.0, self._ended[0], self._ended[1], self._info(invalid=True)
        if self.stop_action and a == self.problem.n_cells * self.n_species:
            return self._end(self.tracker.constraints(), stopped=True)
        cell, species = divmod(a, self.n_species)
        invalid = not self._mask[cell, species]
        if invalid:
            reward, dom = -self.invalid_penalty, False
        else:
            before = self.tracker.values()
            change = self.tracker.apply(cell, species)
            dom = dominates(self.tracker.values(), before)
            reward = change if self.reward_kind == "scalar" else self.alpha * change + self.beta * dom
            self._mask = self.tracker.feasible()
        g = self.tracker.constraints()
        penalty = sum(self.lambdas[k] * max(0.0, g[k]) for k in CONSTRAINTS)
        reward -= penalty
        self.steps += 1
        terminated = not self._mask.any()
        truncated = not terminated and self.steps >= self.max_steps
        end = self._finish(g, terminated, truncated) if terminated or truncated else {}
        info = self._info(invalid=invalid, dominates=dom, penalty=penalty, constraints=g)  # the mask after _finish
        info.update(end)
        return self._obs(), float(reward), terminated, truncated, info

    def _finish(self, g: dict, terminated: bool, truncated: bool) -> dict:
        self._done, self._ended = True, (terminated, truncated)
        end = {"plan": self.plan, "objectives": dict(self.tracker.values()), "lambdas": dict(self.lambdas)}
        if self.adapt:
            self.adapt_lambdas(g)
        return end

    def _end(self, g: dict, *, stopped: bool):
        self.steps += 1
        end = self._finish(g, True, False)
        info = self._info(invalid=False, dominates=False, penalty=0.0, constraints=g, stopped=stopped)
        info.update(end)
        return self._obs(), 0.0, True, False, info

    def action_masks(self) -> np.ndarray:
        """(n*S [+ 1],) bool: the feasible actions of the current state (index cell * S + species; the stop
        action last, always feasible until the episode ends)."""
        if self.stop_action:
            return np.append(self._mask.reshape(-1), not self._done)
        return self._mask.reshape(-1)

    # -- the rest
    def adapt_lambdas(self, g: dict[str, float]) -> dict[str, float]:
        """Eq. 29 with the final plan's g: lambda_i (1 + delta sign(g_i)), kept in [lambda_min, lambda_max]."""
        for k in CONSTRAINTS:
            lam = self.lambdas[k] * (1 + self.delta * float(np.sign(g[k])))
            self.lambdas[k] = min(max(lam, self.lambda_min), self.lambda_max)
        return self.lambdas

    @property
    def plan(self) -> np.ndarray:
        """The current plan (H, W) int16 (a copy)."""
        return self.tracker.plan.reshape(self.problem.shape).copy()

    def _start(self):
        self.tracker = Tracker(self.problem)
        self._mask = self.tracker.feasible()
        self.steps = 0
        self._done = False

    def _obs(self) -> dict:
        pb = self.problem
        left = 1.0 - self.tracker.spent / pb.budget if pb.budget > 0 else 0.0
        return {"features": self.features.copy() if self.copy_features else self.features, "plan": self.plan,
                "budget_left": np.array([min(max(left, 0.0), 1.0)], np.float32)}

    def _info(self, **extra) -> dict:
        info = {"action_mask": self.action_masks().copy(), "step": self.steps}
        if self.steps == 0 and self.problem.note:
            info["message"] = self.problem.note
        info.update(extra)
        return info

    def __repr__(self) -> str:
        h, w = self.problem.shape
        lambdas = {k: round(v, 4) for k, v in self.lambdas.items()}
        return (f"PlanningEnv({h}x{w} cells, {self.n_species} species, reward={self.reward_kind}, "
                f"budget={self.problem.budget:,.0f} CNY, lambdas={lambdas})")


def run_episode(env: PlanningEnv, policy=None, rng: np.random.Generator | None = None):
    """Play one episode: ``policy(obs, mask) -> action`` or uniformly random feasible actions.
    Returns (rewards list, final info)."""
    rng = rng or np.random.default_rng(0)
    obs, info = env.reset()
    rewards = []
    while True:
        mask = info["action_mask"]
        if policy is not None:
            action = policy(obs, mask)
        elif mask.any():
            action = int(rng.choice(np.flatnonzero(mask)))
        else:
            action = 0
        obs, r, terminated, truncated, info = env.step(action)
        rewards.append(r)
        if terminated or truncated:
            return rewards, info

