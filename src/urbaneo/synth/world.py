"""The synthetic city's world model: one vector city from which every demo input is rendered.

The city is built vector-first, the way OpenStreetMap describes a real one: districts (Voronoi
cells) with a Local Climate Zone per year, water, a road network, buildings with heights, and
green areas. Rasters (fine land cover, heights, roof types) are rasterised from these vectors, so
the OSM extract, the VHR image, the Landsat scenes and the labels all describe the same city.

Urban growth: towns are Gaussian "urban intensity" kernels whose width grows each year; a
district becomes built in the first year its intensity passes URBAN_THRESHOLD, so green fringe
districts turn into buildings over the years.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Transformer
from rasterio import features
from scipy import ndimage
from scipy.stats import norm

from ..grid import Grid, city_grid, snapped_grid
from .. import lcz_classes as lcz

# Fine land-cover codes of the rendered city (0 = outside)
WATER, TREE, SHRUB, GRASS, CROP, SOIL, PAVED, ROAD, ROOF = range(1, 10)
COVER_NAMES = {WATER: "water", TREE: "tree", SHRUB: "shrub", GRASS: "grass", CROP: "crop",
               SOIL: "soil", PAVED: "paved", ROAD: "road", ROOF: "roof"}
IMPERVIOUS = (PAVED, ROAD, ROOF)

URBAN_THRESHOLD = 0.42
GROWTH_PER_YEAR = 0.06  # relative widening of every town kernel per year

# Morphology per built LCZ, after Stewart & Oke (2012, Table 3): street-block size (m), lot size (m),
# building side as a share of the lot (its square is roughly the building surface fraction within
# blocks), height range (m), impervious share of the open ground, tree share of the pervious ground.
MORPHOLOGY = {
    1: dict(block=120, lot=38, side=0.78, h=(25, 100), paved=0.85, trees=0.3),
    2: dict(block=100, lot=26, side=0.80, h=(10, 25), paved=0.75, trees=0.3),
    3: dict(block=70, lot=14, side=0.80, h=(3, 9), paved=0.6, trees=0.3),
    4: dict(block=150, lot=55, side=0.50, h=(30, 90), paved=0.45, trees=0.5),
    5: dict(block=120, lot=34, side=0.58, h=(10, 25), paved=0.5, trees=0.5),
    6: dict(block=90, lot=20, side=0.58, h=(3, 10), paved=0.4, trees=0.5),
    7: dict(block=60, lot=9, side=0.92, h=(2, 4), paved=0.2, trees=0.2),
    8: dict(block=200, lot=70, side=0.68, h=(5, 12), paved=0.8, trees=0.2),
    9: dict(block=110, lot=32, side=0.42, h=(3, 9), paved=0.15, trees=0.5),
    10: dict(block=200, lot=60, side=0.52, h=(8, 18), paved=0.6, trees=0.1),
}
# Which LCZ a district gets, by the urban intensity it reaches in the last year
URBAN_CHOICES = [  # (lower bound of intensity, {lcz: probability})
    (0.85, {1: 0.4, 2: 0.4, 4: 0.2}),
    (0.70, {2: 0.35, 4: 0.2, 5: 0.35, 1: 0.1}),
    (0.55, {5: 0.35, 6: 0.25, 8: 0.2, 3: 0.1, 10: 0.1}),
    (URBAN_THRESHOLD, {6: 0.35, 8: 0.2, 9: 0.2, 10: 0.15, 7: 0.1}),
]
NATURAL_CHOICES = {11: 0.25, 12: 0.2, 14: 0.37, 13: 0.1, 16: 0.05, 15: 0.03}
PREDEVELOPMENT_CHOICES = {14: 0.6, 12: 0.3, 13: 0.1}  # what fringe districts are before they are built
PARK_SHARE = 0.08  # urban districts kept as parks (LCZ A/B) for good

ROAD_WIDTH = {"motorway": 30.0, "primary": 20.0, "secondary": 14.0, "tertiary": 10.0,
              "residential": 7.0, "service": 5.0}
ROOF_TYPES = ("concrete", "dark", "red_tile", "blue_steel", "white")
ROOF_MIX = {  # roof-type probabilities by LCZ: blue steel and white roofs mark industry
    1: (0.6, 0.3, 0.0, 0.0, 0.1), 2: (0.6, 0.3, 0.05, 0.0, 0.05), 3: (0.2, 0.2, 0.6, 0.0, 0.0),
    4: (0.7, 0.2, 0.0, 0.0, 0.1), 5: (0.6, 0.2, 0.1, 0.0, 0.1), 6: (0.3, 0.2, 0.5, 0.0, 0.0),
    7: (0.2, 0.4, 0.2, 0.2, 0.0), 8: (0.2, 0.0, 0.0, 0.5, 0.3), 9: (0.3, 0.1, 0.6, 0.0, 0.0),
    10: (0.3, 0.1, 0.0, 0.4, 0.2),
}


@dataclass(frozen=True)
class Profile:
    """Size knobs of a generated city; `demo` is the default city, `tiny` is for tests."""

    fine_res: float  # m; must divide 30 so Landsat pixels are whole blocks of fine pixels
    margin_m: float  # Landsat scenes and the fine grid extend this far beyond the AOI
    district_m: float  # typical district (Voronoi cell) size
    n_towns: int  # satellite towns in the region around the city
    soil_spacing_m: float
    n_stations: int


PROFILES = {
    "demo": Profile(fine_res=3.0, margin_m=900.0, district_m=450.0, n_towns=7, soil_spacing_m=1000.0, n_stations=15),
    "tiny": Profile(fine_res=6.0, margin_m=300.0, district_m=300.0, n_towns=3, soil_spacing_m=500.0, n_stations=6),
}


@dataclass
class World:
    aoi: tuple[float, float, float, float]
    years: list[int]
    seed: int
    profile: Profile
    grid: Grid  # fine grid over AOI + margin (UTM)
    region: Grid  # 30 m grid over AOI + region buffer (UTM)
    towns: np.ndarray  # (n, 4): x, y, amplitude, sigma_m in the first year
    region_noise: np.ndarray  # smooth N(0,1) field on `region`, shapes the towns
    districts: np.ndarray  # shapely polygons
    district_lcz: np.ndarray  # (n_districts, n_years) LCZ code 1-17
    district_park: np.ndarray  # bool: urban-zoned district kept as a park
    water: list  # [(polygon, tags)] water areas
    waterways: list  # [(LineString, tags)] river centre lines (OSM only)
    roads: list  # [(LineString, highway, first year index)]
    buildings: dict = field(default_factory=dict)  # arrays: geom, height, levels, roof, year0, lcz

    # -- urban intensity ------------------------------------------------------------------------------
    def intensity(self, x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
        """Urban intensity (0..~1.3) at UTM points in year index k."""
        x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        total = np.zeros(x.shape)
        for tx, ty, amp, sigma in self.towns:
            s = sigma * (1 + GROWTH_PER_YEAR * k)
            total += amp * np.exp(-((x - tx) ** 2 + (y - ty) ** 2) / (2 * s * s))
        col = (x - self.region.xmin) / self.region.res - 0.5
        row = (self.region.ymax - y) / self.region.res - 0.5
        noise = ndimage.map_coordinates(self.region_noise, [row, col], order=1, mode="nearest")
        return total * np.exp(0.3 * noise)

    # -- rasters ---------------------------------------------------------------------------------------
    def district_index(self) -> np.ndarray:
        """Fine raster of district numbers (int32)."""
        shapes = ((geom, i) for i, geom in enumerate(self.districts))
        return features.rasterize(shapes, out_shape=self.grid.shape, transform=self.grid.transform,
                                  fill=-1, dtype="int32")

    def land_cover(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fine land cover, building height (m) and roof type index (-1 = none) in year index k."""
        rng = np.random.default_rng([self.seed, 7])  # same texture every year: only development changes it
        fine = _unit_noise(rng, self.grid.shape, 1.5)  # tree crowns
        coarse = _unit_noise(rng, self.grid.shape, 8.0 * 3.0 / self.grid.res)  # fields and paved yards
        did = self.district_index()
        zone = self.district_lcz[np.clip(did, 0, None), k]
        cover = np.full(self.grid.shape, GRASS, dtype=np.uint8)

        def pick(mask, share_first, first, second, noise):
            cover[mask & (noise < norm.ppf(share_first))] = first
            cover[mask & (noise >= norm.ppf(share_first))] = second

        pick(zone == 11, 0.9, TREE, GRASS, fine)
        pick(zone == 12, 0.4, TREE, GRASS, fine)
        pick(zone == 13, 0.8, SHRUB, SOIL, fine)
        pick(zone == 14, 0.55, CROP, GRASS, coarse)
        pick(zone == 15, 0.9, PAVED, SOIL, coarse)
        pick(zone == 16, 0.9, SOIL, GRASS, coarse)
        cover[zone == 17] = WATER
        for code, m in MORPHOLOGY.items():
            inside = zone == code
            if not inside.any():
                continue
            paved = inside & (coarse < norm.ppf(m["paved"]))
            cover[paved] = PAVED
            pervious = inside & ~paved
            cover[pervious & (fine < norm.ppf(m["trees"]))] = TREE
            cover[pervious & (fine >= norm.ppf(m["trees"]))] = GRASS
        cover[did < 0] = GRASS

        water = features.rasterize((g for g, _ in self.water), out_shape=self.grid.shape,
                                   transform=self.grid.transform, fill=0, dtype="uint8")
        cover[water == 1] = WATER
        live_roads = [(line.buffer(ROAD_WIDTH[hw] / 2, cap_style="flat"), 1)
                      for line, hw, y0 in self.roads if y0 <= k]
        if live_roads:
            road = features.rasterize(live_roads, out_shape=self.grid.shape, transform=self.grid.transform,
                                      fill=0, dtype="uint8")
            cover[road == 1] = ROAD
        height = np.zeros(self.grid.shape, dtype=np.float32)
        roof = np.full(self.grid.shape, -1, dtype=np.int16)
        b = self.buildings
        live = np.flatnonzero(b["year0"] <= k)
        if live.size:
            height, roof = self._burn_buildings(live)
            cover[height > 0] = ROOF
        return cover, height, roof

    def _burn_buildings(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rasterise axis-aligned building boxes by pixel-centre sampling (much faster than rasterize())."""
        g = self.grid
        height = np.zeros(g.shape, dtype=np.float32)
        roof = np.full(g.shape, -1, dtype=np.int16)
        x0, y0, x1, y1 = shapely.bounds(self.buildings["geom"][idx]).T
        c0 = np.ceil((x0 - g.xmin) / g.res - 0.5).astype(int)
        c1 = np.floor((x1 - g.xmin) / g.res - 0.5).astype(int) + 1
        r0 = np.ceil((g.ymax - y1) / g.res - 0.5).astype(int)
        r1 = np.floor((g.ymax - y0) / g.res - 0.5).astype(int) + 1
        c0, r0 = np.clip(c0, 0, g.width), np.clip(r0, 0, g.height)
        c1, r1 = np.clip(c1, 0, g.width), np.clip(r1, 0, g.height)
        for i, a, b_, c, d in zip(idx, r0, r1, c0, c1):
            height[a:b_, c:d] = self.buildings["height"][i]
            roof[a:b_, c:d] = self.buildings["roof"][i]
        return height, roof

    def lcz_map(self, k: int, grid: Grid) -> np.ndarray:
        """LCZ (1-17) on a coarse grid in year index k: the district zoning, water where water dominates."""
        shapes = ((g, int(c)) for g, c in zip(self.districts, self.district_lcz[:, k]))
        out = features.rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8")
        water = features.rasterize((g for g, _ in self.water), out_shape=grid.shape, transform=grid.transform,
                                   fill=0, dtype="uint8")
        out[water == 1] = lcz.WATER
        return out

    # -- coordinates -----------------------------------------------------------------------------------
    def to_lonlat(self) -> Transformer:
        return Transformer.from_crs(self.grid.crs, "EPSG:4326", always_xy=True)


def _unit_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit variance."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px, mode="wrap")
    return (field_ - field_.mean()) / (field_.std() + 1e-12)


def _choose(rng: np.random.Generator, table: dict[int, float]) -> int:
    codes = np.array(list(table))
    p = np.array(list(table.values()), dtype=float)
    return int(rng.choice(codes, p=p / p.sum()))


def build_world(aoi: tuple[float, float, float, float], years: list[int], seed: int = 0,
                profile: str = "demo", region_buffer_km: float = 30.0) -> World:
    """Generate the vector city for a lon/lat AOI; deterministic from ``seed``."""
    prof = PROFILES[profile]
    rng = np.random.default_rng([seed, 1])
    grid = city_grid(aoi, res=prof.fine_res, buffer_m=prof.margin_m)
    grid = snapped_grid(grid.epsg, grid.bounds, 30.0).with_res(prof.fine_res)  # whole Landsat pixels
    region = city_grid(aoi, res=30.0, buffer_m=region_buffer_km * 1000.0)
    cx = (grid.bounds[0] + grid.bounds[2]) / 2
    cy = (grid.bounds[1] + grid.bounds[3]) / 2
    city_m = min(grid.bounds[2] - grid.bounds[0], grid.bounds[3] - grid.bounds[1]) - 2 * prof.margin_m

    # Towns: the city itself, then satellite towns of various sizes around it in the region
    towns = [(cx, cy, 1.0, 0.35 * city_m)]
    half_region = min(region.bounds[2] - region.bounds[0], region.bounds[3] - region.bounds[1]) / 2
    for _ in range(prof.n_towns):
        r = rng.uniform(0.75 * city_m + 2000, 0.9 * half_region)
        a = rng.uniform(0, 2 * np.pi)
        towns.append((cx + r * np.cos(a), cy + r * np.sin(a), rng.uniform(0.65, 1.0),
                      rng.uniform(0.05, 0.18) * city_m + rng.uniform(300, 1500)))
    region_noise = _unit_noise(rng, region.shape, 600.0 / region.res)

    world = World(aoi=tuple(aoi), years=list(years), seed=seed, profile=prof, grid=grid, region=region,
                  towns=np.array(towns), region_noise=region_noise, districts=np.empty(0, object),
                  district_lcz=np.empty((0, len(years)), int), district_park=np.empty(0, bool),
                  water=[], waterways=[], roads=[])
    _add_water(world, rng, city_m)
    _add_districts(world, rng)
    _add_roads(world, rng, city_m)
    _add_buildings(world, rng)
    return world


def _add_water(world: World, rng: np.random.Generator, city_m: float) -> None:
    """A meandering river across the scene and a lake: negative-NDVI surfaces for every sensor."""
    xmin, ymin, xmax, ymax = world.grid.bounds
    t = np.linspace(0, 1, 200)
    amp, phase, yoff = rng.uniform(0.05, 0.1) * city_m, rng.uniform(0, 2 * np.pi), rng.uniform(-0.25, 0.25)
    x = xmin + t * (xmax - xmin)
    y = (ymin + ymax) / 2 + yoff * city_m + amp * np.sin(2 * np.pi * 1.3 * t + phase)
    centre = shapely.LineString(np.c_[x, y])
    width = max(0.02 * city_m, 60.0)
    world.water.append((centre.buffer(width / 2), {"natural": "water", "water": "river", "name": "Demo River"}))
    world.waterways.append((centre, {"waterway": "river", "name": "Demo River"}))  # OSM's centre line
    lx = (xmin + xmax) / 2 + rng.uniform(-0.3, 0.3) * city_m
    ly = (ymin + ymax) / 2 + np.sign(rng.uniform(-1, 1)) * rng.uniform(0.3, 0.4) * city_m
    lake = shapely.Point(lx, ly).buffer(0.07 * city_m)
    lake = shapely.affinity.scale(lake, 1.6, 1.0)
    world.water.append((lake, {"natural": "water", "water": "lake", "name": "Demo Lake"}))


def _add_districts(world: World, rng: np.random.Generator) -> None:
    xmin, ymin, xmax, ymax = world.grid.bounds
    n = max(8, int(round((xmax - xmin) * (ymax - ymin) / world.profile.district_m ** 2)))
    pts = np.c_[rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)]
    box = shapely.box(xmin, ymin, xmax, ymax)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=box))
    cells = shapely.intersection(cells, box)
    # sort by centroid (north to south, west to east) so district numbers do not depend on GEOS order
    cen = shapely.centroid(cells)
    order = np.lexsort((shapely.get_x(cen), -shapely.get_y(cen)))
    cells, cen = cells[order], cen[order]
    water = shapely.union_all([g for g, _ in world.water])
    wet = shapely.area(shapely.intersection(cells, water)) > 0.5 * shapely.area(cells)

    n_years = len(world.years)
    u = np.stack([world.intensity(shapely.get_x(cen), shapely.get_y(cen), k) for k in range(n_years)], axis=1)
    zoned = np.zeros((len(cells), n_years), dtype=np.int64)
    park = np.zeros(len(cells), bool)
    for i in range(len(cells)):
        if wet[i]:
            zoned[i] = lcz.WATER
            continue
        final = u[i, -1]
        if final < URBAN_THRESHOLD:
            zoned[i] = _choose(rng, NATURAL_CHOICES)
            continue
        if rng.uniform() < PARK_SHARE:
            zoned[i] = rng.choice([11, 12])
            park[i] = True
            continue
        built = next(lc for lo, table in URBAN_CHOICES if final >= lo for lc in [_choose(rng, table)])
        before = _choose(rng, PREDEVELOPMENT_CHOICES)
        first = int(np.argmax(u[i] >= URBAN_THRESHOLD))
        zoned[i, :first] = before
        zoned[i, first:] = built
    world.districts, world.district_lcz, world.district_park = cells, zoned, park


def _add_roads(world: World, rng: np.random.Generator, city_m: float) -> None:
    """Arterial lattice + ring motorway from the first year; local streets when a district is built."""
    xmin, ymin, xmax, ymax = world.grid.bounds
    lines: list[tuple[shapely.LineString, str, int]] = []
    spacing = 1200.0
    for i, x in enumerate(np.arange(xmin + spacing / 2, xmax, spacing / 2)):
        x += rng.uniform(-60, 60)
        lines.append((shapely.LineString([(x, ymin), (x, ymax)]), "primary" if i % 2 else "secondary", 0))
    for i, y in enumerate(np.arange(ymin + spacing / 2, ymax, spacing / 2)):
        y += rng.uniform(-60, 60)
        lines.append((shapely.LineString([(xmin, y), (xmax, y)]), "primary" if i % 2 else "secondary", 0))
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    ring = shapely.Point(cx, cy).buffer(0.36 * city_m, quad_segs=16).exterior
    lines.append((shapely.LineString(ring.coords), "motorway", 0))
    arterial = [shapely.buffer(line, ROAD_WIDTH[hw] / 2 + 4) for line, hw, _ in lines]

    for i, cell in enumerate(world.districts):
        zones = world.district_lcz[i]
        code = int(zones[-1])
        if code not in MORPHOLOGY or world.district_park[i]:
            continue
        first = int(np.argmax(np.isin(zones, list(MORPHOLOGY))))
        block = MORPHOLOGY[code]["block"]
        hw = "service" if code in (8, 10) else "residential"
        bx0, by0, bx1, by1 = cell.bounds
        local = [shapely.LineString([(x, by0), (x, by1)]) for x in np.arange(np.floor(bx0 / block) * block, bx1, block)]
        local += [shapely.LineString([(bx0, y), (bx1, y)]) for y in np.arange(np.floor(by0 / block) * block, by1, block)]
        lines += [(g, hw, first) for g in shapely.intersection(np.array(local, dtype=object), cell)]
    lines = [(g, hw, y0) for g, hw, y0 in lines if not g.is_empty and g.length > 1.0]
    lines = [(part, hw, y0) for g, hw, y0 in lines for part in shapely.get_parts(g) if part.length > 1.0]
    world.roads = _node(lines)
    world.buildings["arterial_exclusion"] = arterial


def _node(lines: list) -> list:
    """Insert every crossing point into both roads so that crossing roads share a vertex (a routable network)."""
    geoms = np.array([g for g, _, _ in lines], dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    crossings = shapely.intersection(geoms[a], geoms[b])
    extra: dict[int, list] = {}
    for i, j, pts in zip(a, b, crossings):
        for p in shapely.get_parts(pts):
            if p.geom_type != "Point":
                continue
            xy = (round(p.x, 3), round(p.y, 3))
            extra.setdefault(int(i), []).append(xy)
            extra.setdefault(int(j), []).append(xy)
    out = []
    for i, (g, hw, y0) in enumerate(lines):
        coords = [tuple(round(c, 3) for c in xy) for xy in g.coords]
        if i in extra:
            pts = set(coords) | set(extra[i])
            coords = sorted(pts, key=lambda xy: g.project(shapely.Point(xy)))
        out.append((shapely.LineString(coords), hw, y0))
    return out


def _add_buildings(world: World, rng: np.random.Generator) -> None:
    """Rectangular buildings on lots inside street blocks, sized to each LCZ's built fraction."""
    # buildings keep clear of arterials and water; an STRtree of the parts beats one big union
    blocked = shapely.STRtree(world.buildings.pop("arterial_exclusion") + [g.buffer(10) for g, _ in world.water])
    geoms, heights, roofs, year0, zone = [], [], [], [], []
    for i, cell in enumerate(world.districts):
        zones = world.district_lcz[i]
        code = int(zones[-1])
        if code not in MORPHOLOGY or world.district_park[i]:
            continue
        m = MORPHOLOGY[code]
        first = int(np.argmax(np.isin(zones, list(MORPHOLOGY))))
        block, half_street = m["block"], ROAD_WIDTH["service" if code in (8, 10) else "residential"] / 2 + 3
        inner = block - 2 * half_street
        per_side = max(1, int(round(inner / m["lot"])))
        lot = inner / per_side
        bx0, by0, bx1, by1 = cell.bounds
        x0s = np.arange(np.floor(bx0 / block) * block, bx1, block)
        y0s = np.arange(np.floor(by0 / block) * block, by1, block)
        offs = half_street + lot * np.arange(per_side)
        lx = (x0s[:, None] + offs[None, :]).ravel()
        ly = (y0s[:, None] + offs[None, :]).ravel()
        LX, LY = np.meshgrid(lx, ly)
        LX, LY = LX.ravel(), LY.ravel()
        n = LX.size
        side = lot * m["side"] * rng.uniform(0.85, 1.0, n)
        aspect = rng.uniform(0.7, 1.4, n)
        w, h = side * np.sqrt(aspect), side / np.sqrt(aspect)
        w, h = np.minimum(w, lot * 0.95), np.minimum(h, lot * 0.95)
        cxs = LX + lot / 2 + rng.uniform(-1, 1, n) * (lot - w) / 2 * 0.8
        cys = LY + lot / 2 + rng.uniform(-1, 1, n) * (lot - h) / 2 * 0.8
        boxes = shapely.box(cxs - w / 2, cys - h / 2, cxs + w / 2, cys + h / 2)
        shapely.prepare(cell)
        ok = shapely.within(boxes, cell)
        ok[np.unique(blocked.query(boxes, predicate="intersects")[0])] = False
        boxes = boxes[ok]
        k = boxes.size
        lo, hi = m["h"]
        hgt = np.exp(rng.uniform(np.log(lo), np.log(hi), k))  # log-uniform: many lower, few taller
        geoms.append(boxes)
        heights.append(hgt)
        roofs.append(rng.choice(len(ROOF_TYPES), size=k, p=ROOF_MIX[code]))
        year0.append(np.full(k, first))
        zone.append(np.full(k, code))
    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    heights_ = cat(heights, np.float32)
    world.buildings = {
        "geom": cat(geoms, object),
        "height": np.round(heights_, 1),
        "levels": np.maximum(1, np.round(heights_ / 3.0)).astype(np.int32),
        "roof": cat(roofs, np.int16),
        "year0": cat(year0, np.int32),
        "lcz": cat(zone, np.int16),
    }


def impervious_fraction(cover: np.ndarray, factor: int) -> np.ndarray:
    """Share of roads, roofs and paving in blocks of factor x factor fine pixels."""
    h, w = cover.shape[0] // factor, cover.shape[1] // factor
    blocks = np.isin(cover[: h * factor, : w * factor], IMPERVIOUS).reshape(h, factor, w, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def region_built_fraction(world: World, k: int, impervious_30m: np.ndarray) -> np.ndarray:
    """Built-up fraction on the 30 m region grid in year index k.

    Inside the rendered city it is the real impervious share of its buildings and roads; outside,
    the towns' urban intensity ramped around the urban threshold.
    """
    x, y = world.region.xy()
    u = world.intensity(x[None, :], y[:, None], k)
    built = np.clip((u - URBAN_THRESHOLD + 0.1) / 0.25, 0.0, 1.0).astype(np.float32)
    col0 = int(round((world.grid.xmin - world.region.xmin) / world.region.res))
    row0 = int(round((world.region.ymax - world.grid.ymax) / world.region.res))
    h, w = impervious_30m.shape
    built[row0 : row0 + h, col0 : col0 + w] = impervious_30m
    return built
