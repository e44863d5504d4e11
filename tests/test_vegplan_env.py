"""Seed 001's planning MDP: the gymnasium environment (masks, rewards eqs. 24/28/29/30, episodes)."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from urbaneo.errors import InputError
from urbaneo.stages.vegplan import objectives as vo
from urbaneo.stages.vegplan.env import PlanningEnv, dominates, run_episode

from vegplan_toys import random_problem


# 8x7 cells, 4 species: fewer bare cells and incompatible pairs than the default toy, a looser share cap
problem = partial(random_problem, h=8, w=7, s=4, bare=0.2, incompatible=0.2, max_species_share=0.4)


def env_of(pb, **kw) -> PlanningEnv:
    feats = np.random.default_rng(1).random((3, *pb.shape)).astype(np.float32)
    return PlanningEnv(pb, feats, seed=0, **kw)


@pytest.mark.parametrize("stop_action", [False, True])
def test_check_env_passes(stop_action):
    env = env_of(problem(), stop_action=stop_action)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # render-mode notice only (no registered spec)
        check_env(env)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert info["action_mask"].shape == (env.problem.n_cells * 4 + stop_action,) and info["action_mask"].dtype == bool


def test_stop_action_ends_the_episode_with_reward_zero():
    pb = problem(8)
    env = env_of(pb, stop_action=True)
    stop = pb.n_cells * pb.n_species
    assert env.action_space.n == stop + 1
    _, info = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):
        mask = env.action_masks()
        assert mask.shape == (stop + 1,) and mask[-1]  # always possible while the episode runs
        np.testing.assert_array_equal(mask[:-1], vo.feasible_actions(pb, env.plan).ravel())
        np.testing.assert_array_equal(info["action_mask"], mask)
        _, _, term, _, info = env.step(int(rng.choice(np.flatnonzero(mask[:-1]))))
        assert not term
    plan = env.plan
    obs, r, term, trunc, info = env.step(stop)
    assert r == 0.0 and term and not trunc and info["stopped"] and info["step"] == 4
    np.testing.assert_array_equal(obs["plan"], plan)
    np.testing.assert_array_equal(info["plan"], plan)
    assert info["objectives"] == pytest.approx(vo.objectives(pb, plan)) and "lambdas" in info
    assert not env.action_masks()[-1] and not info["action_mask"][-1]
    # stopping at once gives the empty plan; a budget that buys nothing leaves only the stop action
    env.reset()
    *_, info = env.step(stop)
    assert info["stopped"] and not info["plan"].any() and info["objectives"]["planted_cells"] == 0
    broke = env_of(problem(8, budget_cny=1.0), stop_action=True)
    _, info = broke.reset()
    assert info["action_mask"].tolist() == [False] * stop + [True]
    # an episode that runs out of feasible plantings ends by itself, and the stop action is masked then too
    _, info = run_episode(env, policy=lambda obs, mask: int(np.flatnonzero(mask[:-1])[0]))
    assert "stopped" not in info and not info["action_mask"].any()


def test_masks_match_feasible_actions_and_plans_stay_feasible():
    pb = problem(2, budget_share=0.2, maintenance_cny_yr=8e5)
    env = env_of(pb)
    rng = np.random.default_rng(0)
    obs, info = env.reset()
    n = 0
    while True:
        np.testing.assert_array_equal(env.action_masks(), vo.feasible_actions(pb, obs["plan"]).ravel())
        np.testing.assert_array_equal(info["action_mask"], env.action_masks())
        assert obs["budget_left"][0] == pytest.approx(1 - vo.objectives(pb, obs["plan"])["ic_total"] / pb.budget,
                                                      abs=1e-6)
        obs, _, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        n += 1
        if term or trunc:
            break
    assert term and not trunc and n > 3  # ended because nothing is feasible
    assert not env.action_masks().any()
    assert vo.validate_plan(pb, info["plan"]) == []
    np.testing.assert_array_equal(info["plan"], obs["plan"])
    assert info["objectives"] == pytest.approx(vo.objectives(pb, info["plan"]))


def test_scalar_reward_is_composite_change_minus_penalties():
    pb = problem(3, min_shannon=1.2)
    env = env_of(pb, reward="scalar", lambda0=0.05)
    _, info = env.reset()
    rng = np.random.default_rng(5)
    t = vo.Tracker(pb)  # replays the actions to recompute every step's penalty independently
    rewards, penalties = [], []
    while True:
        a = int(rng.choice(np.flatnonzero(info["action_mask"])))
        t.apply(*divmod(a, pb.n_species))
        penalties.append(0.05 * max(0.0, pb.settings.min_shannon - vo.objectives(pb, t.plan)["shannon"]))
        _, r, term, trunc, info = env.step(a)
        rewards.append(r)
        assert info["penalty"] == pytest.approx(penalties[-1])
        if term or trunc:
            break
    # eq. 24 telescopes: sum of rewards = F(X_T) - F(X_0) - sum_t lambda max(0, min_shannon - H'(X_t))
    f0 = vo.objectives(pb, np.zeros(pb.shape, int))["composite"]
    f1 = vo.objectives(pb, info["plan"])["composite"]
    assert sum(rewards) == pytest.approx(f1 - f0 - sum(penalties), abs=1e-9)
    assert sum(penalties) > 0 and penalties[-1] == 0.0  # the first steps lack diversity, the last do not


def test_pareto_reward_adds_the_dominance_bonus():
    pb = problem(4)
    env = env_of(pb, alpha=2.0, beta=0.5, lambda0=1e-4, lambda_min=1e-4)
    _, info = env.reset()
    before = vo.objectives(pb, env.plan)
    a = int(np.flatnonzero(info["action_mask"])[0])
    _, r, *_, info = env.step(a)
    after = vo.objectives(pb, env.plan)
    dom = dominates(after, before)
    assert info["dominates"] == dom
    assert dom  # the first planting raises CSP, ESV and CER and keeps BI at 0
    assert r == pytest.approx(2.0 * (after["composite"] - before["composite"]) + 0.5 - info["penalty"])
    assert dominates({"csp_total": 2, "bi": 1, "esv_total": 1, "cer": 1}, {"csp_total": 1, "bi": 1, "esv_total": 1,
                                                                             "cer": 1})
    assert not dominates({"csp_total": 2, "bi": 0, "esv_total": 1, "cer": 1}, {"csp_total": 1, "bi": 1,
                                                                                "esv_total": 1, "cer": 1})


def test_lambda_adaptation_direction():
    # min_shannon above ln(4): the 4-species plan always violates the biodiversity threshold
    pb = problem(5, min_shannon=2.0)
    env = env_of(pb, delta=0.1, lambda0=0.01)
    _, info = run_episode(env, rng=np.random.default_rng(0))
    assert info["constraints"]["biodiversity"] > 0 and info["lambdas"]["biodiversity"] == 0.01
    assert env.lambdas["biodiversity"] == pytest.approx(0.011)  # violated: grows by delta
    assert env.lambdas["budget"] == pytest.approx(0.009)  # satisfied: shrinks
    for _ in range(80):
        run_episode(env, rng=np.random.default_rng(0))
    assert env.lambdas["budget"] == env.lambda_min  # kept in [lambda_min, lambda_max]
    fixed = env_of(pb, adapt=False)
    run_episode(fixed)
    assert fixed.lambdas["biodiversity"] == 0.01


def test_episode_ends_truncation_invalid_actions_and_empty_budget():
    pb = problem(6)
    env = env_of(pb, max_steps=5)
    _, info = env.reset()
    invalid = int(np.flatnonzero(~info["action_mask"])[0])
    obs2, r, term, trunc, info = env.step(invalid)
    # a no-op: nothing planted, reward = minus the biodiversity penalty of the empty plan (H' = 0)
    assert info["invalid"] and (obs2["plan"] == 0).all() and r == pytest.approx(-0.01 * 1.5)
    for _ in range(4):
        *_, term, trunc, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
    assert trunc and not term and "plan" in info and (info["plan"] > 0).sum() == 4
    with pytest.raises(InputError, match="action"):
        env.step(10 ** 9)
    broke = env_of(problem(6, budget_cny=1.0))
    _, info = broke.reset()
    assert "budget" in info["message"] and not info["action_mask"].any()
    _, _, term, _, info = broke.step(0)
    assert term and info["objectives"]["csp"] == 0.0 and (info["plan"] == 0).all()


def test_determinism_with_seed():
    pb = problem(7)

    def play(seed):
        env = env_of(pb)
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        out = []
        while True:
            a = env.action_space.sample(mask=info["action_mask"].astype(np.int8))
            obs, r, term, trunc, info = env.step(a)
            out.append((a, r))
            if term or trunc:
                return out, obs["plan"]

    a, pa = play(11)
    b, pb_ = play(11)
    assert a == b and np.array_equal(pa, pb_)
    c, _ = play(12)
    assert c != a


def test_bad_arguments():
    pb = problem()
    with pytest.raises(InputError, match="reward"):
        env_of(pb, reward="best")
    with pytest.raises(InputError, match="state_features"):
        PlanningEnv(pb, np.zeros((2, 3, 3), np.float32))
    with pytest.raises(InputError, match="lambda0"):
        env_of(pb, lambda0=2.0)
