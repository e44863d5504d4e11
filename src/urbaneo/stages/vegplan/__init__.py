"""Vegetation plan (seed 001, EcoDeep-Green): where to plant which species, against the baselines.

The planning-grid site (``site``), the CNN, GNN and CNN-GNN models on the suitability proxy task
(``train``), one DQN per state representation (``agent``), the CNN-GNN-DRL plan (``plan``), the
comparison with the baselines (Tables 2-4 and Pareto fronts, ``evaluate``; Fig. 4, ``robustness``)
and the published product (``publish``). Beside the steps: ``shared`` (what several steps use: the
features and agent files, the normalised stack, an agent's state and greedy plan), ``objectives``
(the planning problem, its settings and scores), ``env`` (the MDP), ``dqn`` and ``planners`` (the
baselines' allocations).
"""

STEPS: dict[str, str] = {
    "site": "the planning-grid site: features, suitability, plantable ground",
    "train": "the CNN, GNN and CNN-GNN models on the suitability proxy task",
    "agent": "train one DQN agent",
    "plan": "the CNN-GNN-DRL plan as COG and GeoJSON",
    "evaluate": "Tables 2-4 and the Pareto fronts of every method",
    "robustness": "Fig. 4: every method on inputs perturbed by 5 to 20 percent",
    "publish": "the plan COG and GeoJSON, quicklook and STAC items",
}
