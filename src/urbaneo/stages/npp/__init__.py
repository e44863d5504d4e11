"""NPP / carbon storage (seed 000, CiSL-NPP): st-MAE gap filling, PAR forecast, NPP maps and their product.

Two st-MAEs per city (RGB and false colour, ``train``), then the maps (cloud gaps filled, PAR
forecast by the RNN, eqs. 5-8, ``predict``), their evaluation against the reference and the
baselines (``evaluate``), the long-term protocol (``longterm``), the st-MAE ablation (``ablation``,
not in the workflow's ``all``) and the published product (``publish``).
"""

STEPS = {
    "train": "train one composite's st-MAE on the city's clear Landsat chips",
    "predict": "gap-filled composites, seasonal PAR (RNN forecast) and NPP maps",
    "evaluate": "NPP vs the reference, baselines, Tables 3 and 4",
    "longterm": "long-term protocol: models trained up to each year estimate the later ones",
    "ablation": "st-MAE ablation: frozen blocks, projection layers, mask ratio, OSM vs random mask, "
                "season embedding (Table 2)",
    "publish": "NPP COGs, quicklooks and STAC items",
}
