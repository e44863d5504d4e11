"""Reprojection benchmark: urbaneo's warp_to_grid against gdalwarp on the same job.

A generated Landsat-like band (uint16, UTM zone 32N, 30 m, tiled deflate GeoTIFF, nodata 0 outside a
tilted footprint) is warped bilinearly onto a city grid in the city's own UTM zone (33N) by
``urbaneo.grid.warp_to_grid``, by ``gdalwarp`` given the same kernel scale (the same output), and by
``gdalwarp`` as a user types it. Every run is a fresh child process, so each peak RSS is the tool's
own and no cache carries over between repeats. The job is then repeated on a scene twice as long, to
show that the memory of our path follows the grid, not the scene. See bench/README.md.

    bench/run [--repeats N] [--size WIDTHxHEIGHT] [--city-km KM] [--workdir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCENE_EPSG = 32632                   # the UTM zone USGS grids this (WRS-2) scene in
CITY_LONLAT = (12.53, 48.2)          # east of 12E: the city's own UTM zone is 33N, the scene's is 32N
CITY_AT = (0.7, 0.3)                 # where the city centre sits in the scene, as fractions of width / height
TILT = math.radians(12.0)            # the footprint's tilt against the UTM grid, as in a descending Landsat pass
STRIP = 512                          # rows generated per step: the generator's memory stays a few strips
GOAL_RATIO, GOAL_RSS_MB = 1.0, 1536  # the goals
VERSION = 1                          # of the generator


# --- the scene ----------------------------------------------------------------------------------------

def _value_noise(rows: np.ndarray, width: int, cell: int, coarse: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a coarse random lattice (one value per ``cell`` pixels) onto some rows."""
    fy, fx = rows / cell, np.arange(width) / cell
    i, j = fy.astype(int), fx.astype(int)
    wy, wx = (fy - i)[:, None].astype(np.float32), (fx - j)[None, :].astype(np.float32)
    top = coarse[i][:, j] * (1 - wx) + coarse[i][:, j + 1] * wx
    bottom = coarse[i + 1][:, j] * (1 - wx) + coarse[i + 1][:, j + 1] * wx
    return top * (1 - wy) + bottom * wy


def scene_bounds(width: int, height: int) -> tuple[float, float]:
    """Top-left corner (zone 32N, on the 30 m lattice) that puts the city centre at CITY_AT of the scene."""
    from pyproj import Transformer

    cx, cy = Transformer.from_crs("EPSG:4326", f"EPSG:{SCENE_EPSG}", always_xy=True).transform(*CITY_LONLAT)
    return (round((cx - CITY_AT[0] * width * 30) / 30) * 30, round((cy + CITY_AT[1] * height * 30) / 30) * 30)


def generate_scene(path: Path, width: int, height: int, seed: int, scenes: int = 1) -> None:
    """Write the band strip by strip: smooth terrain, field-like patches with sharp edges, sensor noise.

    ``scenes`` > 1 stacks that many scenes of ``height`` rows along the track, as consecutive WRS rows
    would: the first one is placed as a single scene is, so the city is at the same place in all sizes.
    """
    import rasterio
    from affine import Affine

    from urbaneo.atomic import atomic_path

    xmin, top = scene_bounds(width, height)
    rows_per_scene, height = height, height * scenes
    rng = np.random.default_rng(seed)
    # one lattice per scale: 15 km relief, 2 km land-cover patches, 300 m texture
    lattices = {cell: rng.random((height // cell + 2, width // cell + 2), dtype=np.float32)
                for cell in (500, 64, 10)}
    # Valid data is a tilted rectangle inscribed in the first scene, stretched along the track over the
    # others; outside it is fill (0), as in a real scene. u runs across the track, v along it.
    half_u = width / (math.cos(TILT) + math.sin(TILT)) / 2
    half_v = (rows_per_scene * math.cos(TILT) - width * math.sin(TILT)) / math.cos(2 * TILT) / 2
    v_max = half_v + (height - rows_per_scene) * math.cos(TILT)
    cols = np.arange(width, dtype=np.float32) - width / 2
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint16", nodata=0,
                   crs=f"EPSG:{SCENE_EPSG}", transform=Affine(30.0, 0, xmin, 0, -30.0, top),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=2)
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, height, STRIP):
            rows = np.arange(r0, min(r0 + STRIP, height))
            relief = _value_noise(rows, width, 500, lattices[500])
            classes = np.floor(_value_noise(rows, width, 64, lattices[64]) * 6)  # 6 land-cover levels
            texture = _value_noise(rows, width, 10, lattices[10])
            noise = np.random.default_rng([seed, r0]).normal(0, 1, (len(rows), width)).astype(np.float32)
            dn = 8000 + 6000 * relief + 1500 * classes + 800 * texture + 150 * noise
            dy = (rows - rows_per_scene / 2).astype(np.float32)[:, None]
            u = cols * math.cos(TILT) - dy * math.sin(TILT)
            v = cols * math.sin(TILT) + dy * math.cos(TILT)
            valid = (np.abs(u) < half_u) & (v > -half_v) & (v < v_max)
            block = np.where(valid, np.clip(dn, 1, 65535), 0).astype(np.uint16)
            dst.write(block, 1, window=((r0, r0 + len(rows)), (0, width)))


def city(km: float):
    """The city's grid: a km x km AOI around CITY_LONLAT, on its own UTM zone at 30 m."""
    from urbaneo.grid import city_grid

    lon, lat = CITY_LONLAT
    dlat = km / 2 / 111.32
    dlon = dlat / math.cos(math.radians(lat))
    return city_grid((lon - dlon, lat - dlat, lon + dlon, lat + dlat), res=30)


# --- the two tools ------------------------------------------------------------------------------------

def run_child(cmd: list[str]) -> tuple[float, str]:
    """Run a command; return its wall time and its stdout (or stop the bench with its stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{Path(cmd[0]).name} failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall, proc.stdout


def peak_rss_mb() -> int:
    """This process's own peak RSS. VmHWM counts from exec; ru_maxrss would also count the pre-exec
    image, i.e. the parent that spawned us (the bench itself, ~100 MB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux


def time_ours(scene: Path, grid, save: Path) -> tuple[float, float, int]:
    """warp_to_grid in a fresh interpreter: (seconds in the call, seconds of the whole process, peak RSS MiB)."""
    args = json.dumps({"scene": str(scene), "grid": grid.__dict__, "save": str(save)})
    wall, out = run_child([sys.executable, __file__, "--child", args])
    result = json.loads(out)
    return result["seconds"], wall, result["peak_rss_mb"]


def child(args: str) -> None:
    """The child side of ``time_ours``: time one call, save the result for the agreement check.

    rasterio is imported before the clock starts, as in any pipeline process that calls warp_to_grid
    more than once; opening the file, setting PROJ up and the warp itself are timed.
    """
    import rasterio.warp  # noqa: F401

    from urbaneo.grid import Grid, warp_to_grid

    job = json.loads(args)
    grid = Grid(**job["grid"])
    t0 = time.perf_counter()
    data = warp_to_grid(job["scene"], grid, resampling="bilinear")
    seconds = time.perf_counter() - t0
    rss = peak_rss_mb()
    np.save(job["save"], data[0])
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss}))


def time_gdalwarp(cmd: list[str], rss_file: Path) -> tuple[float, int | None]:
    """Run a gdalwarp command: (wall seconds, peak RSS MiB from GNU time, when it is installed)."""
    gnu_time = shutil.which("time") if sys.platform.startswith("linux") else None
    if not gnu_time:
        return run_child(cmd)[0], None
    wall, _ = run_child([gnu_time, "-f", "%M", "-o", str(rss_file), *cmd])
    return wall, int(rss_file.read_text().split()[-1]) // 1024


def gdalwarp_cmd(exe: str, scene: Path, grid, out: Path, scale: tuple[float, float] | None) -> list[str]:
    """The same job for gdalwarp: target CRS, bounds, resolution, bilinear, float32 with NaN where no data.

    With ``scale``, gdalwarp gets the kernel scale warp_to_grid passes to GDAL, so both compute the same
    output; without it, it is gdalwarp as a user types it (GDAL then guesses the scale per chunk).
    """
    xmin, ymin, xmax, ymax = grid.bounds
    kernel = ["-wo", f"XSCALE={scale[0]!r}", "-wo", f"YSCALE={scale[1]!r}"] if scale else []
    return [exe, "-q", "-overwrite", "-t_srs", grid.crs, "-te", *map(str, (xmin, ymin, xmax, ymax)),
            "-tr", str(grid.res), str(grid.res), "-r", "bilinear", "-ot", "Float32", "-dstnodata", "nan",
            *kernel, "-of", "GTiff", str(scene), str(out)]


def find_gdalwarp(install: bool) -> str | None:
    """gdalwarp from PATH; installs Debian's gdal-bin when missing and allowed (needs root)."""
    exe = shutil.which("gdalwarp")
    if exe or not install:
        return exe
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("gdalwarp not found: install it (Debian/Ubuntu: sudo apt-get install gdal-bin), "
                         "or run with --no-gdalwarp to time urbaneo alone")
    print("gdalwarp not found: installing Debian's gdal-bin (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "gdal-bin"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode:
            raise SystemExit(f"'{' '.join(cmd)}' failed (see above): install gdal-bin yourself, "
                             "or run with --no-gdalwarp to time urbaneo alone")
    return shutil.which("gdalwarp")


# --- the run ------------------------------------------------------------------------------------------

OURS, SAME, PLAIN = "urbaneo warp_to_grid", "gdalwarp, same kernel", "gdalwarp, default kernel"


def bench_one(scene: Path, grid, repeats: int, gdalwarp: str | None, tmp: Path) -> dict:
    """Time every tool ``repeats`` times on one scene; compare the outputs with ours."""
    import rasterio

    from urbaneo.grid import _kernel_scale  # the kernel scale warp_to_grid gives GDAL, for the same job

    with rasterio.open(scene) as src:
        scale = _kernel_scale(src, grid)
    jobs = {SAME: ("same", scale), PLAIN: ("plain", None)} if gdalwarp else {}  # name: (output stem, scale)
    tools = {name: {"seconds": [], "rss_mb": None} for name in (OURS, *jobs)}
    tools[OURS]["process_seconds"] = []
    for _ in range(repeats):  # alternate the tools, so that a busy moment of the machine hits all of them
        call, wall, rss = time_ours(scene, grid, tmp / "ours.npy")
        tools[OURS]["seconds"].append(call)
        tools[OURS]["process_seconds"].append(wall)
        tools[OURS]["rss_mb"] = max(tools[OURS]["rss_mb"] or 0, rss)
        for name, (stem, job_scale) in jobs.items():
            cmd = gdalwarp_cmd(gdalwarp, scene, grid, tmp / f"{stem}.tif", job_scale)
            wall, rss = time_gdalwarp(cmd, tmp / "rss.txt")
            tools[name]["seconds"].append(wall)
            tools[name]["rss_mb"] = rss and max(tools[name]["rss_mb"] or 0, rss)
    mine = np.load(tmp / "ours.npy")
    for name, (stem, _) in jobs.items():
        with rasterio.open(tmp / f"{stem}.tif") as src:
            theirs = src.read(1)
        both = ~np.isnan(mine) & ~np.isnan(theirs)
        diff = np.abs(mine[both] - theirs[both]) if both.any() else np.zeros(1)
        tools[name].update(ratio=min(tools[OURS]["seconds"]) / min(tools[name]["seconds"]),
                           mean_abs_diff=float(diff.mean()), max_abs_diff=float(diff.max()),
                           nan_mismatch=int((np.isnan(mine) != np.isnan(theirs)).sum()))
    with rasterio.open(scene) as src:
        size = f"{src.width} x {src.height}"
    return {"scene": scene.name, "size": size, "nan_fraction": float(np.isnan(mine).mean()),
            "kernel_scale": scale, "tools": tools}


def report(rows: list[dict], grid, repeats: int) -> str:
    """The table, then the issue's goals as MET / MISSED."""
    head = ("tool", "best s", "peak RSS", "ours/this", "mean|diff|", "max|diff|")
    widths = (26, 8, 10, 11, 12, 11)
    lines = [f"city grid {grid.crs} {grid.width} x {grid.height} at {grid.res:g} m, bilinear; "
             f"scene EPSG:{SCENE_EPSG} uint16; best of {repeats} (each run a fresh process)"]
    for row in rows:
        lines += ["", f"scene {row['size']} ({row['scene']})", "".join(f"{h:>{w}}" if i else f"{h:<{w}}"
                                                                       for i, (h, w) in enumerate(zip(head, widths)))]
        for name, t in row["tools"].items():
            cells = [name, f"{min(t['seconds']):.2f}", f"{t['rss_mb']} MB" if t["rss_mb"] else "-",
                     f"{t['ratio']:.2f}" if "ratio" in t else "-",
                     f"{t['mean_abs_diff']:.2f}" if "ratio" in t else "-",
                     f"{t['max_abs_diff']:.2f}" if "ratio" in t else "-"]
            lines.append("".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cells, widths))))
        ours = row["tools"][OURS]
        lines.append(f"  (warp_to_grid's process, interpreter start and imports included: "
                     f"{min(ours['process_seconds']):.2f} s)")
    ratios = [t["ratio"] for row in rows for t in row["tools"].values() if "ratio" in t]
    rss = [row["tools"][OURS]["rss_mb"] for row in rows]
    goals = [("ratio <= 1.0 against every gdalwarp", max(ratios) <= GOAL_RATIO)] if ratios else []
    goals.append(("RSS <= 1.5 GB", max(rss) <= GOAL_RSS_MB))
    # "not growing": within 10 % (allocator noise) when the scene doubles
    goals.append(("RSS flat when the scene doubles", rss[-1] <= rss[0] * 1.1))
    lines += ["", "goals: " + ", ".join(f"{name} {'MET' if ok else 'MISSED'}" for name, ok in goals)]
    return "\n".join(lines)


def scene_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 7800x7900") from None
    if min(width, height) < 100:
        raise argparse.ArgumentTypeError(f"{text!r}: the scene must be at least 100 x 100 pixels")
    return width, height


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=lambda v: max(1, int(v)), default=3,
                   help="runs per tool; the best is reported (default 3)")
    p.add_argument("--size", type=scene_size, default="7800x7900",
                   help="scene WIDTHxHEIGHT in pixels (default 7800x7900); the doubled one is WIDTHx(2*HEIGHT)")
    p.add_argument("--city-km", type=float, default=30.0, help="side of the city AOI in km (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=REPO / "resources/bench",
                   help="where the generated scenes are kept between runs (default resources/bench)")
    p.add_argument("--no-gdalwarp", action="store_true", help="time urbaneo alone (no gdalwarp on this machine)")
    p.add_argument("--json", type=Path, help="also write the measurements as JSON here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(a.child)
        return 0

    width, height = a.size
    gdalwarp = None if a.no_gdalwarp else find_gdalwarp(install=True)
    grid = city(a.city_km)
    a.workdir.mkdir(parents=True, exist_ok=True)
    # the name carries everything the content depends on: a changed generator gets a new VERSION
    single = a.workdir / f"scene_v{VERSION}_{width}x{height}_s{a.seed}.tif"
    double = a.workdir / f"scene_v{VERSION}_{width}x{2 * height}_s{a.seed}.tif"
    for path, scenes in ((single, 1), (double, 2)):
        if not path.exists():  # generated once, then reused: same seed and size give the same file
            t0 = time.perf_counter()
            generate_scene(path, width, height, a.seed, scenes)
            print(f"generated {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    if gdalwarp:
        version = subprocess.run([gdalwarp, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"gdalwarp: {version}")

    with tempfile.TemporaryDirectory(prefix="urbaneo-bench-") as tmp:
        rows = [bench_one(scene, grid, a.repeats, gdalwarp, Path(tmp)) for scene in (single, double)]
    print(report(rows, grid, a.repeats), flush=True)
    if a.json:
        a.json.write_text(json.dumps({"grid": grid.__dict__, "repeats": a.repeats, "rows": rows}, indent=1))
    # A ratio means something only if both computed the same thing: the same pixels, within the
    # approximate transformer's error (both use GDAL's default 0.125 pixel), on a fully covered city.
    for row in rows:
        same = row["tools"].get(SAME, {"nan_mismatch": 0, "max_abs_diff": 0.0})
        if row["nan_fraction"] > 0:
            print(f"ERROR: {row['scene']} does not cover the whole city: make --city-km smaller", file=sys.stderr)
            return 1
        if same["nan_mismatch"] or same["max_abs_diff"] > 1.0:
            print(f"ERROR: urbaneo and gdalwarp disagree on {row['scene']}: the ratio compares different jobs",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
