"""Model presets: `demo` (tiny, CPU, minutes) and `paper` (the seed papers' settings).

Only the tiling is here for now; each product adds its model's hyper-parameters beside it.
"""

from __future__ import annotations

# model -> the aligned source and grid its tiles are cut from, how they are split, and per preset the
# tile size / stride in pixels (or, for checkerboard chips, the number of sub-regions)
TILES = {
    # st-MAE (seed 000): ViT-B/16 images of 224 px; the last year is held out
    "npp": {"source": "landsat", "grid": "base", "split": "years",
            "demo": {"size": 32, "stride": 32}, "paper": {"size": 224, "stride": 224}},
    # SU-Net (seed 002): 256 x 256 scene patches, 4:1:1 random split
    "lcz": {"source": "gf2", "grid": "vhr", "split": "random",
            "demo": {"size": 64, "stride": 64}, "paper": {"size": 256, "stride": 256}},
    # IFCN (seed 003): 36 x 36 VIIRS chips, 2-8 per checkerboard sub-region (400 in the paper), 21:4 by
    # sub-region; `demo` uses as many sub-regions as the region holds, up to 9
    "urban": {"source": "viirs", "grid": "region", "split": "checkerboard",
              "demo": {"size": 36, "regions": 9}, "paper": {"size": 36, "regions": 400}},
    # EcoDeep-Green (seed 001): raster stacks around planning cells; 4:1:1
    "vegplan": {"source": "osm", "grid": "planning", "split": "random",
                "demo": {"size": 16, "stride": 8}, "paper": {"size": 32, "stride": 16}},
}
