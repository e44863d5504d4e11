"""Local Climate Zones (seed 002, SU-Net): scene unmixing on VHR images, the city's LCZ map and product.

SU-Net trained on the city's VHR scenes and their LCZ fractions (``train``), the city-wide class and
abundance maps (``predict``), Table 2 and the confusion matrices beside a random forest
(``evaluate``) and the published product (``publish``).
"""

STEPS = {
    "train": "train SU-Net on the city's VHR scenes and LCZ fractions",
    "predict": "LCZ class and abundance COGs of the whole city",
    "evaluate": "Table 2 and the confusion matrices, SU-Net beside a random forest",
    "publish": "LCZ COGs, quicklooks and STAC items (product and model)",
}
