"""Seed 001's decision module: the DQN's state planes, replay buffer, Q-network prior, static state and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from urbaneo.presets import ECODEEP
from urbaneo.stages.vegplan import dqn
from urbaneo.stages.vegplan import objectives as vo
from urbaneo.stages.vegplan import shared as vegplan
from urbaneo.stages.vegplan.agent import dqn_hyperparameters
from urbaneo.stages.vegplan.env import PlanningEnv

from vegplan_toys import assert_hard_constraints, random_problem

# the demo preset with a DQN small enough for a few seconds of training on one thread
PRESET = {**ECODEEP["demo"], "dqn_batch_size": 8, "dqn_warmup": 16, "eps_steps": 100, "dqn_target_update": 10,
          "dqn_episodes": 4, "dqn_replay": 1000}
LIFE_FORMS = ("tree", "shrub", "grass", "bamboo", "tree")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def agent(seed=0, h=10, w=9, s=5, static=None, **settings):
    """(problem, static planes, PlanningQ, StatePlanes) of a random problem, the network seeded by ``seed``."""
    pb = random_problem(seed, h, w, s, life_form=LIFE_FORMS[:s], **settings)
    if static is None:
        feats = np.random.default_rng(seed).random((3, h, w)).astype(np.float32)
        static = vegplan.static_state(feats, pb, vegplan.action_values(pb))
    torch.manual_seed(seed)
    qnet, planes = vegplan.build_agent(PRESET, static, pb, pb.life_form)
    return pb, static, qnet, planes


def train(seed=0):
    pb, static, qnet, planes = agent(seed)
    env = vegplan.agent_env(pb, static, vegplan.action_values(pb), seed)
    history = dqn.train_dqn(env, qnet, planes, static, dqn_hyperparameters(PRESET), seed=seed)
    return env, qnet, planes, static, history


@pytest.fixture(scope="module")
def trained():
    return train(0)


# --- state planes and replay ---------------------------------------------------------------------------


def test_state_planes_of_a_hand_made_plan():
    forms = ("tree", "grass", " Shrub")  # the site's life forms are matched as site.py does: trimmed, any case
    pb = vo.build_problem((2, 3), [[100.0, 200.0, 0.0], [300.0, 400.0, 500.0]], np.ones((3, 2, 3), bool),
                          np.ones((3, 2, 3)), life_form=forms, **{k: [1.0, 1.0, 1.0] for k in vo.SPECIES_VARIABLES})
    planes = dqn.StatePlanes.of(pb, pb.life_form)
    plans = torch.tensor([[[1, 0, 0], [3, 1, 0]], [[0, 0, 0], [0, 0, 0]]], dtype=torch.int16)
    local, glob = planes(plans, torch.tensor([0.25, 1.0]))
    assert local.shape == (2, planes.local_channels, 2, 3) and glob.shape == (2, 4)
    expected = np.zeros((5, 2, 3), np.float32)
    expected[0] = [[1, 0, 0], [1, 1, 0]]  # planted
    expected[1 + dqn.LIFE_FORMS.index("tree")] = [[1, 0, 0], [0, 1, 0]]
    expected[1 + dqn.LIFE_FORMS.index("shrub")] = [[0, 0, 0], [1, 0, 0]]
    np.testing.assert_array_equal(local[0].numpy(), expected)
    # species shares of the planted AREA (species 1 on 100 + 400 m2, species 3 on 300 m2), then the budget left
    np.testing.assert_allclose(glob[0].numpy(), [500 / 800, 0.0, 300 / 800, 0.25], rtol=1e-6)
    assert not local[1].any() and glob[1].tolist() == [0.0, 0.0, 0.0, 1.0]  # an empty plan


def test_replay_keeps_masks_exactly_and_samples_by_its_seed():
    n_actions, rng = 37, np.random.default_rng(0)  # 37: the packed masks end in a partial byte

    def filled(seed, capacity=20, count=12):
        memory = dqn.Replay(capacity, (2, 3), n_actions, np.random.default_rng(seed))
        for i in range(count):
            plan = np.full((2, 3), i, np.int16)
            memory.add(plan, 0.5, i, float(i) / 10, plan + 1, 0.25, i % 3 == 0, masks[i])
        return memory

    masks = rng.random((12, n_actions)) < 0.5
    masks[0] = True
    masks[1] = False
    memory = filled(1)
    batch = memory.sample(50)
    assert batch["next_mask"].dtype == torch.bool and batch["next_mask"].shape == (50, n_actions)
    i = batch["action"].numpy()  # transition i was stored with action i
    np.testing.assert_array_equal(batch["next_mask"].numpy(), masks[i])
    np.testing.assert_array_equal(batch["plan"].numpy()[:, 0, 0], i)
    np.testing.assert_allclose(batch["reward"].numpy(), i / 10, rtol=1e-6)
    np.testing.assert_array_equal(batch["done"].numpy(), i % 3 == 0)
    assert set(i) == set(range(12))  # 50 draws of 12 reach every transition
    again = filled(1).sample(50)
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    assert not torch.equal(filled(2).sample(50)["action"], batch["action"])
    # a ring: the oldest transitions are overwritten
    ring = filled(1, capacity=5)
    assert ring.size == 5 and sorted(ring.data["action"]) == [7, 8, 9, 10, 11]


# --- the Q-network ---------------------------------------------------------------------------------------


def test_untrained_q_is_the_prior_and_cells_match_the_full_map():
    pb, static, qnet, planes = agent(1)
    s = pb.n_species
    static_t = torch.as_tensor(static).unsqueeze(0)
    rng = np.random.default_rng(1)
    plans = torch.as_tensor(rng.integers(0, s + 1, (3, *pb.shape)), dtype=torch.int16)
    local, glob = planes(plans, torch.tensor([1.0, 0.5, 0.1]))
    prior = static_t[:, -s:].expand(3, -1, -1, -1)
    for mode in (qnet.train, qnet.eval):
        mode()
        with torch.no_grad():
            assert torch.equal(qnet(static_t, local, glob), prior)
    cells = torch.as_tensor(rng.integers(0, pb.n_cells, 3))
    for _ in range(3):
        with torch.no_grad():
            for p in qnet.parameters():
                p.add_(0.1 * torch.randn_like(p))
        for mode in (qnet.train, qnet.eval):
            mode()
            with torch.no_grad():
                full = qnet(static_t, local, glob)
                at = qnet(static_t, local, glob, cells=cells)
            assert not torch.equal(full, prior)
            torch.testing.assert_close(at, full.flatten(2)[torch.arange(3), :, cells], rtol=1e-5, atol=1e-6)


def test_prior_ranks_actions_by_gain_per_cny_and_alpha_scales_a_typical_gain():
    pb = random_problem(2, 10, 9, 5, life_form=LIFE_FORMS)
    values = vegplan.action_values(pb)
    feats = np.zeros((2, *pb.shape), np.float32)
    static = vegplan.static_state(feats, pb, values)
    s = pb.n_species
    assert static.shape == (2 + 3 * s + 1 + s, *pb.shape) and np.abs(static[2:-s]).max() <= 1.0
    prior = static[-s:].reshape(s, -1).T  # (n, S) like the problem
    # the linear part of the composite (CSP and ESV), per CNY, computed here from the problem
    w = pb.settings.weight
    gain = pb.area[:, None] * pb.suitability * (w["csp"] * pb.csp_rate / pb.norms["csp"]
                                                + w["esv"] * pb.esv / pb.norms["esv"])
    cost = pb.area[:, None] * pb.cost
    ok = pb.compatible
    per_cny = gain[ok] / cost[ok]
    order = np.argsort(per_cny)
    assert (np.diff(prior[ok][order]) >= -1e-6 * np.abs(prior[ok]).max()).all()  # same order as gain per CNY
    assert (prior[~ok] == 0).all() and prior[ok].min() > 0
    a, b = np.argmin(per_cny), np.argmax(per_cny)
    assert prior[ok][b] > prior[ok][a]
    # the budget, spent on each cell's best species by gain per CNY, buys plantings of median gain g: alpha g = 0.1
    ratio = np.divide(gain, cost, out=np.full_like(gain, -1.0), where=ok)
    best = ratio.argmax(1)
    cells = [c for c in np.argsort(-ratio[np.arange(pb.n_cells), best], kind="stable") if ok[c].any()]
    spent, bought = 0.0, []
    for c in cells:
        spent += cost[c, best[c]]
        if spent >= pb.budget:
            break
        bought.append(gain[c, best[c]])
    assert len(bought) == values["actions"] > 3
    assert values["alpha"] * np.median(bought) == pytest.approx(0.1)
    assert vegplan.reward_weights(values)["alpha"] == values["alpha"]


# --- training and the greedy plan ------------------------------------------------------------------------


def test_training_is_deterministic(trained):
    _, qnet, _, _, history = trained
    _, qnet2, _, _, history2 = train(0)
    assert len(history["return"]) == PRESET["dqn_episodes"] and np.isfinite(history["loss"][1:]).all()
    np.testing.assert_equal(history2, history)
    state, state2 = qnet.state_dict(), qnet2.state_dict()
    assert all(torch.equal(state[k], state2[k]) for k in state)


def test_kept_policy_is_no_worse_than_the_untrained_prior(trained):
    env, qnet, planes, static, history = trained
    kept = history["kept_episode"]
    best = history["untrained_greedy"] if kept < 0 else history["greedy"][kept]
    assert best == max([history["untrained_greedy"], *history["greedy"]])
    assert best >= history["untrained_greedy"]
    assert dqn._greedy_composite(env, qnet, planes, static) == best  # the kept weights are those of that plan


def test_rollout_plan_is_feasible_and_its_order_lists_the_planted_cells(trained):
    env, qnet, planes, static, _ = trained
    plan, order, info = dqn.rollout(env, qnet, planes, static)
    pb = env.problem
    assert_hard_constraints(pb, plan)
    flat = plan.reshape(-1)
    assert len(order) == len({c for c, _ in order}) == (flat > 0).sum() > 0
    assert all(0 <= c < pb.n_cells and flat[c] == s + 1 for c, s in order)
    assert info["objectives"] == pytest.approx(vo.objectives(pb, plan))


def test_all_negative_q_stops_at_once_with_an_empty_plan():
    pb, static, _, _ = agent(3)
    static = static.copy()
    static[-pb.n_species:] = -1.0  # the prior planes: every planting is worth -1, stopping 0
    pb, static, qnet, planes = agent(3, static=static)
    env = vegplan.agent_env(pb, static, vegplan.action_values(pb), 0)
    plan, order, info = dqn.rollout(env, qnet, planes, static)
    assert order == [] and not plan.any() and info["stopped"] and info["step"] == 1
    assert info["objectives"] == pytest.approx(vo.objectives(pb, plan))


def test_rollout_without_a_stop_action_plants_until_nothing_is_feasible():
    pb, static, qnet, planes = agent(4)
    env = PlanningEnv(pb, static, seed=0, stop_action=False)
    plan, order, _ = dqn.rollout(env, qnet, planes, static)
    assert_hard_constraints(pb, plan)
    assert len(order) == (plan > 0).sum() > 0 and not env.action_masks().any()
    history = dqn.train_dqn(env, qnet, planes, static, {**dqn_hyperparameters(PRESET), "episodes": 2}, seed=0)
    assert np.isfinite(history["composite"]).all() and np.isfinite(history["loss"][-1])  # trained, no stop action


def test_bad_objective_weights_on_the_command_line_stop_with_one_line(tmp_path, capsys):
    from urbaneo.cli import main

    out = tmp_path / "plan.tif"
    args = ["vegplan", "plan", "--site", "s.nc", "--features", "f.pt", "--agent", "a.pt", "--out", str(out)]
    assert main([*args, "--weights", "csp=high"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["urbaneo: --weights: 'csp=high' is not name=number (e.g. csp=0.3,bi=0.25)"]
    assert main([*args, "--weights", "carbon=1"]) == 2
    assert capsys.readouterr().err.strip() == "urbaneo: weights: unknown objective 'carbon'; choose from csp, bi, esv, ic, cer"
    assert not out.exists()
