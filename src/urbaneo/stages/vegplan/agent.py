"""``urbaneo vegplan agent`` (rule vegplan_agent): one DQN per state representation (VEGPLAN_AGENTS),
trained in the environment scored with that model's belief (the raw-input agent, which has no learned
model, plans with the paper's own indices CLI x SFI, as MPM does)."""

from __future__ import annotations

import argparse
import time

from ...errors import InputError
from ...presets import VEGPLAN_AGENTS
from ...training import save, seed_everything
from ..options import add_runtime_args, set_threads
from .dqn import train_dqn
from .objectives import Settings, add_settings_args, problem_from_site, settings_of, with_suitability
from .shared import (
    AGENT_FORMAT,
    FEATURES_HELP,
    SITE_HELP,
    action_values,
    add_training_args,
    agent_env,
    agent_inputs,
    build_agent,
    hyperparameters,
    normalised,
    read_features,
    static_state,
    stored,
    write_timings,
)
from .site import read_site


def dqn_hyperparameters(hp: dict) -> dict:
    """What ``dqn.train_dqn`` reads, from the preset."""
    return {"episodes": hp["dqn_episodes"], "batch_size": hp["dqn_batch_size"], "gamma": hp["gamma"],
            "eps_start": hp["eps_start"], "eps_end": hp["eps_end"], "eps_steps": hp["eps_steps"], "lr": hp["dqn_lr"],
            "lr_end": hp["dqn_lr_min"], "buffer": hp["dqn_replay"], "warmup": hp["dqn_warmup"],
            "train_every": hp["dqn_train_every"], "target_every": hp["dqn_target_update"]}


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
    history = train_dqn(agent_env(problem, static, values, seed), qnet, planes, static, dqn, seed=seed,
                        progress=progress)
    seconds = time.perf_counter() - t0
    result = {"format": AGENT_FORMAT, "agent": agent, "preset": preset, "seed": seed, "hyperparameters": dqn,
              "settings": settings.as_dict(), "weights": qnet.state_dict(), "history": history}
    save(result, out)
    write_timings(out, {agent: seconds})
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="NC", help=SITE_HELP)
    p.add_argument("--features", required=True, metavar="PT", help=FEATURES_HELP)
    p.add_argument("--agent", required=True, choices=VEGPLAN_AGENTS)
    add_training_args(p)
    add_settings_args(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    data = train_agent(args.site, args.features, args.agent, args.out, settings=settings_of(args),
                       preset=args.preset, seed=args.seed, max_epochs=args.max_epochs, progress=args.progress)
    h = data["history"]
    print(f"vegplan agent {args.agent}: {len(h['episode'])} episodes; its greedy plan's composite (in its belief) "
          f"{h['untrained_greedy']:.4f} untrained, {max(h['greedy'], default=float('nan')):.4f} at best "
          f"(episode {h['kept_episode']}, kept) -> {args.out}")
    return 0
