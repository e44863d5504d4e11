"""Smoke runs of the benchmarks at a tiny size, so that bench/ cannot rot (not timing tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import rasterio

REPO = Path(__file__).resolve().parents[1]


def test_bench_runs_and_both_tools_compute_the_same_grid(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [str(REPO / "bench/run"), "--size", "300x320", "--city-km", "2", "--repeats", "1",
           "--workdir", str(tmp_path), "--json", str(out)]
    have_gdalwarp = shutil.which("gdalwarp") is not None
    if not have_gdalwarp:  # never let a test apt-get: time our path alone
        cmd.append("--no-gdalwarp")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "goals:" in proc.stdout and "RSS <= 1.5 GB MET" in proc.stdout

    result = json.loads(out.read_text())
    grid = result["grid"]
    assert grid["epsg"] == 32633 and grid["res"] == 30  # the city's own zone; the scene is in 32N
    single, double = result["rows"]
    assert (single["size"], double["size"]) == ("300 x 320", "300 x 640")
    for row in (single, double):
        ours = row["tools"]["urbaneo warp_to_grid"]
        assert row["nan_fraction"] == 0  # the city lies inside the scene's valid footprint
        assert len(ours["seconds"]) == 1 and ours["seconds"][0] > 0
        assert 10 < ours["rss_mb"] < 1536
        # the grid is a 30 m grid warped from 30 m: the kernel scale is ~1, not a downsampling one
        assert all(abs(s - 1) < 0.01 for s in row["kernel_scale"])
        if have_gdalwarp:
            same = row["tools"]["gdalwarp, same kernel"]
            assert same["nan_mismatch"] == 0 and same["max_abs_diff"] <= 1.0
            assert same["ratio"] > 0

    # the generated scene is what the README says: tiled deflate uint16 in UTM 32N at 30 m, fill 0
    with rasterio.open(tmp_path / "scene_v1_300x320_s0.tif") as src:
        assert (src.crs.to_epsg(), src.res, src.dtypes[0], src.nodata) == (32632, (30.0, 30.0), "uint16", 0)
        assert src.profile["tiled"] and src.compression.name == "deflate"
        band = src.read(1)
    assert (band == 0).any() and (band > 0).mean() > 0.6  # fill corners around a tilted footprint


def test_scene_generation_is_deterministic(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_reproject", REPO / "bench/reproject.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bands = []
    for name, seed in (("a.tif", 3), ("b.tif", 3), ("c.tif", 4)):
        bench.generate_scene(tmp_path / name, 200, 150, seed)
        with rasterio.open(tmp_path / name) as src:
            bands.append(src.read(1))
    assert (bands[0] == bands[1]).all() and not (bands[0] == bands[2]).all()


def test_st_mae_bench_runs_on_synthetic_tensors_and_the_real_loader(tmp_path, tiny_aligned):
    out = tmp_path / "st_mae.json"
    proc = subprocess.run([str(REPO / "bench/run"), "st_mae", "--steps", "1", "--batch", "2",
                           "--aligned", str(tiny_aligned / "resources/align/tiny"), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {f"{s} {m}" for s in ("synthetic", "loader") for m in ("st-MAE", "plain MAE (baseline)")}
    assert all(r["images_per_s"] > 0 and r["tflops"] > 0 for r in rows.values())
    assert "ratio vs baseline" in proc.stdout


def test_su_net_bench_runs_on_synthetic_tensors_and_the_real_loader(tmp_path, tiny_aligned):
    aligned, tiles = tiny_aligned / "resources/align/tiny", tiny_aligned / "resources/tiles/tiny/lcz.parquet"
    out = tmp_path / "su_net.json"
    # one thread: a smoke run, not a timing; two OpenMP threads beside another busy job take 4x longer
    proc = subprocess.run([str(REPO / "bench/run"), "su_net", "--steps", "1", "--repeats", "1", "--batch", "2",
                           "--aligned", str(aligned), "--tiles", str(tiles), "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    baseline = "PSC-Net alone (Swin-V2 classifier, CE)"
    assert result["baseline"] == baseline and result["images_per_step"] == 4  # 2 pure + 2 mixed scenes
    assert result["scene_px"] == {"synthetic": 64, "loader": 64}  # the demo preset's scenes, the demo tiles
    rows = result["rows"]
    assert set(rows) == {f"{s} {m}" for s in ("synthetic", "loader")
                         for m in ("SU-Net (PSC-Net + MSU-Net, GradNorm)", baseline)}
    assert all(r["images_per_s"] > 0 and r["tflops"] > 0 and len(r["step_s_repeats"]) == 1 for r in rows.values())
    for source in ("synthetic", "loader"):  # MSU-Net's decoder and GradNorm's gradients cost FLOPs on top
        su, base = rows[f"{source} SU-Net (PSC-Net + MSU-Net, GradNorm)"], rows[f"{source} {baseline}"]
        assert su["flops_per_step"] > base["flops_per_step"]
    assert "ratio vs baseline" in proc.stdout and f"baseline: {baseline}" in proc.stdout
