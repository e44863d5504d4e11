"""``urbaneo vegplan-site | vegplan-train | vegplan-agent | vegplan-plan | vegplan-evaluate | vegplan-publish``."""

from __future__ import annotations

import argparse
from pathlib import Path

from urbaneo.errors import InputError
from urbaneo.presets import VEGPLAN_AGENTS
from urbaneo.products.stage_cli import add_publish_args, add_runtime_args, set_threads


def settings_of(args: argparse.Namespace):
    """The planning settings from the command line (the workflow passes config["vegplan"])."""
    from urbaneo.products.vegplan_objectives import Settings

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


def _site(args: argparse.Namespace) -> int:
    from urbaneo.align import input_paths
    from urbaneo.config import load_city
    from urbaneo.products.vegplan_site import build_site, write_site

    city = load_city(args.city)
    site = build_site(args.aligned, input_paths(city, "species")[0], city, lcz_map=args.lcz, npp_maps=args.npp, urban_mask=args.urban)
    write_site(site, args.out)
    plantable = float((site["plantable_m2"] > 0).mean())
    print(f"vegplan-site: {site.sizes['y']} x {site.sizes['x']} cells, {plantable:.0%} plantable, "
          f"{site.sizes['species']} species -> {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from urbaneo.products.vegplan import train_features

    set_threads(args.threads)
    data = train_features(args.site, args.tiles, args.out, preset=args.preset, seed=args.seed,
                          max_epochs=args.max_epochs, progress=args.progress)
    for kind, h in data["history"].items():
        print(f"vegplan-train {kind:<7} training loss {h['train_loss'][-1]:.4f}, validation MSE {h['val_mse'][-1]:.4f} "
              f"after {len(h['epoch'])} epochs")
    return 0


def _agent(args: argparse.Namespace) -> int:
    from urbaneo.products.vegplan import train_agent

    set_threads(args.threads)
    data = train_agent(args.site, args.features, args.agent, args.out, settings=settings_of(args),
                       preset=args.preset, seed=args.seed, max_epochs=args.max_epochs, progress=args.progress)
    h = data["history"]
    print(f"vegplan-agent {args.agent}: {len(h['episode'])} episodes; its greedy plan's composite (in its belief) "
          f"{h['untrained_greedy']:.4f} untrained, {max(h['greedy'], default=float('nan')):.4f} at best "
          f"(episode {h['kept_episode']}, kept) -> {args.out}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from urbaneo.products.vegplan import make_plan

    info = make_plan(args.site, args.features, args.agent, args.out, settings=settings_of(args))
    if info["note"]:
        print(f"vegplan-plan: nothing can be planted: {info['note']}")
    o = info["objectives"]
    print(f"vegplan-plan: {info['planted_cells']} cells planted; CSP {o['csp']:.3f} kgCO2/m2/yr, BI {o['bi']:.3f}, "
          f"IC {o['ic']:.1f} CNY/m2, CER {o['cer']:.3f} -> {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from urbaneo.products.vegplan_evaluate import evaluate

    set_threads(args.threads)
    m = evaluate(args.site, args.features, args.agents, args.metrics, settings=settings_of(args), seed=args.seed,
                 progress=args.progress)
    for name, row in m["table2"].items():
        print(f"vegplan-evaluate {name:<12} CSP {row['csp']:.3f}  BI {row['bi']:.3f}  ESV {row['esv']:.1f}  "
              f"IC {row['ic']:.1f}  CER {row['cer']:.4f}  composite {row['composite']:.4f}")
    return 0


def _robustness(args: argparse.Namespace) -> int:
    from urbaneo.products.vegplan_evaluate import robustness

    set_threads(args.threads)
    r = robustness(args.site, args.features, args.agents, args.out, settings=settings_of(args), seed=args.seed,
                   progress=args.progress)
    for name, row in r.items():
        print(f"vegplan-robustness {name:<12} composite lost (%) " + " ".join(f"{v:6.2f}" for v in row["reduction_pct"]))
    return 0


def _publish(args: argparse.Namespace) -> int:
    from urbaneo.atomic import atomic_path
    from urbaneo.products.vegplan_publish import product_params, publish

    settings = settings_of(args)
    item = publish(args.run_dir, args.city, Path(args.site), Path(args.features), Path(args.agent),
                   Path(args.out).parent, params=product_params(args.preset, args.seed, args.max_epochs, settings),
                   period=tuple(args.period))
    with atomic_path(args.out) as tmp:
        tmp.write_text(item + "\n")
    print(f"vegplan-publish: {item} in {args.run_dir}/catalog.json")
    return 0


def add_parser(sub) -> None:
    def training(p):
        from urbaneo.presets import ECODEEP

        p.add_argument("--preset", default="demo", choices=sorted(ECODEEP))
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--max-epochs", type=int, default=None, help="cap on the preset's epochs and DQN episodes")

    def planning(p):
        p.add_argument("--budget-cny", type=float, default=None, help="planting budget in CNY")
        p.add_argument("--budget-share", type=float, default=0.05,
                       help="without --budget-cny: this share of planting every plantable m2 (default 0.05)")
        p.add_argument("--maintenance-cny-yr", type=float, default=None, help="cap on yearly maintenance (CNY)")
        p.add_argument("--max-species-share", type=float, default=0.25, help="largest share of one species")
        p.add_argument("--min-shannon", type=float, default=1.5, help="biodiversity threshold on Shannon's H'")
        p.add_argument("--carbon-price", type=float, default=30.0, help="CNY per t CO2 (eq. 35)")
        p.add_argument("--weights", default="csp=0.3,bi=0.25,esv=0.15,ic=0.1,cer=0.2",
                       help="objective weights of eq. 25, name=value,...")

    site_help = "resources/<run>/vegplan/<city>/site.nc"
    features_help = "resources/<run>/vegplan/<city>/features.pt"
    p = sub.add_parser("vegplan-site", help="the planning-grid site: features, suitability, plantable ground")
    p.add_argument("--city", required=True, metavar="YAML")
    p.add_argument("--aligned", required=True, metavar="DIR", help="resources/align/<city>")
    p.add_argument("--lcz", metavar="TIF", help="the city's LCZ map (else the LCZ labels, when aligned)")
    p.add_argument("--npp", metavar="NC", help="the NPP stage's maps.nc (the current carbon baseline)")
    p.add_argument("--urban", metavar="TIF", help="the urban-land mask")
    p.add_argument("--out", required=True, metavar="NC")
    p.set_defaults(func=_site)

    p = sub.add_parser("vegplan-train", help="the CNN, GNN and CNN-GNN models on the suitability proxy task")
    p.add_argument("--site", required=True, metavar="NC", help=site_help)
    p.add_argument("--tiles", required=True, metavar="PARQUET", help="resources/tiles/<city>/vegplan.parquet")
    training(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")
    p.set_defaults(func=_train)

    p = sub.add_parser("vegplan-agent", help="train one DQN agent")
    p.add_argument("--site", required=True, metavar="NC", help=site_help)
    p.add_argument("--features", required=True, metavar="PT", help=features_help)
    p.add_argument("--agent", required=True, choices=VEGPLAN_AGENTS)
    training(p)
    planning(p)
    add_runtime_args(p)
    p.add_argument("--out", required=True, metavar="PT")
    p.set_defaults(func=_agent)

    p = sub.add_parser("vegplan-plan", help="the CNN-GNN-DRL plan as COG and GeoJSON")
    p.add_argument("--site", required=True, metavar="NC", help=site_help)
    p.add_argument("--features", required=True, metavar="PT", help=features_help)
    p.add_argument("--agent", required=True, metavar="PT", help="resources/<run>/vegplan/<city>/agent_cnn_gnn_drl.pt")
    planning(p)
    p.add_argument("--out", required=True, metavar="TIF", help="the GeoJSON is written beside it")
    p.set_defaults(func=_plan)

    for name, what, out, func in (
            ("vegplan-evaluate", "Tables 2-4 and the Pareto fronts of every method", "metrics", _evaluate),
            ("vegplan-robustness", "Fig. 4: every method on inputs perturbed by 5-20 %", "out", _robustness)):
        p = sub.add_parser(name, help=what)
        p.add_argument("--site", required=True, metavar="NC", help=site_help)
        p.add_argument("--features", required=True, metavar="PT", help=features_help)
        p.add_argument("--agents", required=True, metavar="DIR", help="the folder of agent_<name>.pt")
        p.add_argument("--seed", type=int, default=0)
        planning(p)
        p.add_argument(f"--{out}", required=True, metavar="JSON", help="its folder also gets the PNGs")
        add_runtime_args(p)
        p.set_defaults(func=func)

    p = sub.add_parser("vegplan-publish", help="the plan COG and GeoJSON, quicklook and STAC items")
    add_publish_args(p)
    p.add_argument("--site", required=True, metavar="NC", help=site_help)
    p.add_argument("--features", required=True, metavar="PT", help=features_help)
    p.add_argument("--agent", required=True, metavar="PT")
    training(p)
    planning(p)
    p.set_defaults(func=_publish)
