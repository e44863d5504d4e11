"""Urban construction land (seed 003, IFCN and its baselines): train, predict the region, evaluate, publish.

Each method (`model.METHODS`) is trained on its own (``urbaneo urban train --method M``), so a cluster
runs them side by side; one ``predict`` maps the region with all of them, ``evaluate`` scores them
(Tables 2-4, Fig. 6) and ``publish`` puts IFCN's mask and every model in the run's STAC catalog.
"""

STEPS: dict[str, str] = {
    "train": "train one urban method (IFCN, a baseline) on the city's chips",
    "predict": "region masks (COG) and test-chip masks of the trained urban methods",
    "evaluate": "Tables 2-4 and Fig. 6 for every urban method",
    "publish": "mask COG, polygons, overlay and STAC items of the urban product",
}
