"""bench_local.py --gpu: the rows and the table printed at the end."""

from __future__ import annotations

import numpy as np

from bench.local.common import median
from bench.local.gpu_model import NOTES_BARE_S_PER_STEP, STEP_CACHE_INTERVAL, rel_diff


def preset_rows(paths: dict, steps: int) -> dict:
    base = paths["bare"]
    base_s = median(base["samples_s"])
    quality = paths.get("quality")
    rows = {}
    for name, row in paths.items():
        run_s = median(row["samples_s"])
        loops = [s for s in row["loop_s_per_step_samples"] if s is not None]
        rows[name] = {
            "run_median_s": run_s, "s_per_step": run_s / steps, "ratio_vs_bare": run_s / base_s,
            "loop_s_per_step": median(loops) if loops else None,
            "rel_diff_latents_vs_quality": rel_diff(row["latents"], quality["latents"]) if quality else None,
            "rel_diff_latents_vs_bare": rel_diff(row["latents"], base["latents"]),
            "rel_diff_pixels_vs_quality": rel_diff(row["pixels"].astype(np.float32),
                                                   quality["pixels"].astype(np.float32)) if quality else None,
            "first_run_s": row["first_run_s"],
            "compile_s": None if name == "bare" else row["first_run_s"] - run_s,  # bare compiles nothing
            "prepare_s": row.get("prepare_s"), "peak_gib": row["peak_gib"],
            "compiled_blocks": row["compiled_blocks"], "fp8_linears": row["fp8_linears"],
            "samples_s": row["samples_s"],
            "loop_s_per_step_samples": row["loop_s_per_step_samples"],
        }
    return rows


def hotswap_row(hs: dict, t: dict, small: bool, num, where: str) -> str:
    """The table's row for one hot-swap round (run_hotswap) on preset `where`."""
    where = hs.get("preset", where)
    ok = "n/a" if small else ("yes" if t["met"] else "NO")
    if "recompiles_on_swaps" not in hs:
        return f"| LoRA hot-swap on {where} | {hs.get('error', 'not run')} | | | | | | | == 0 | {ok} |"
    if not hs["slot_creation_graphs"]:
        ok += " (the compile counter saw no graph at slot creation: it cannot vouch for 0)"
    ranks = "/".join(str(lo["rank"]) for lo in hs["loras"])
    low_high = hs.get("loop_s_per_step_after_swaps_range")
    spread = f"{low_high[0]:.3f}-{low_high[1]:.3f}" if low_high else "—"
    peak = "n/a (CPU)" if hs.get("peak_gib") is None else f"{hs['peak_gib']:.1f} GiB (the round)"
    return (f"| LoRA hot-swap on {where} (ranks {ranks}, and none) | swap {num(hs['swap_s_median'], '.2f')} s "
            f"(median) | slots once: {hs['slot_creation_s']:.1f} s, {hs['slot_creation_graphs']} graphs "
            f"| s/step (loop): no slots {num(hs['loop_s_per_step_no_slots'], '.3f')}, before any swap "
            f"{num(hs.get('loop_s_per_step_before_swaps'), '.3f')}, after swaps "
            f"{num(hs['loop_s_per_step_after_swaps'], '.3f')} ({spread}): after / before "
            f"**{num(hs.get('step_after_over_before'), '.3f')}** "
            f" | {peak} | | recompiles on swaps: **{hs['recompiles_on_swaps']}** | | == 0 | {ok} |")


def gpu_table(r: dict, label: str, small: bool) -> str:
    def num(v, fmt):
        return "—" if v is None else format(v, fmt)

    lines = []
    if small:
        lines.append(f"** {label}: float32 on a CPU (the fp8 rows: bf16, fp8 computed by the CPU), a reduced "
                     "architecture; the benchmark compiles the blocks itself (the app compiles only on CUDA); "
                     "targets are not judged **")
    lines += [f"| ({label}) | s/step | vs bare | s/step (loop) | peak GPU | first run | compile (first - run) "
              "| rel. diff latents vs quality | target | ok |", "|---|---|---|---|---|---|---|---|---|---|"]
    targets = {"fast": "ratio_fast_per_step", "fastest": "ratio_fastest_per_image"}
    for name, row in r["paths"].items():
        key = targets.get(name)
        t = r["targets"][key] if key else None
        target = f"{'per step' if name == 'fast' else 'per image'} {t['op']} {t['limit']}" if t else ""
        ok = ("n/a" if small else ("yes" if t["met"] else "NO")) if t else ""
        peak = f"{row['peak_gib']:.1f} GiB" if row["peak_gib"] is not None else "n/a (CPU)"
        compile_s = "—" if row["compile_s"] is None else f"{row['compile_s']:.1f} s"
        lines.append(
            f"| {name} | {row['s_per_step']:.3f} | {row['ratio_vs_bare']:.3f} | {num(row['loop_s_per_step'], '.3f')} "
            f"| {peak} | {row['first_run_s']:.1f} s | {compile_s} "
            f"| {num(row['rel_diff_latents_vs_quality'], '.2e')} | {target} | {ok} |")
    for name, reason in r["unavailable"].items():
        key = targets.get(name)
        target = f"{r['targets'][key]['op']} {r['targets'][key]['limit']}" if key else ""
        lines.append(f"| {name} | unavailable: {reason} | | | | | | | {target} | {'n/a' if small else 'NO'} |")
    for hs, key, where in ((r["hotswap"], "hotswap_recompiles", "quality"),
                           (r["hotswap_fast"], "hotswap_fast_recompiles", "fast")):
        lines.append(hotswap_row(hs, r["targets"][key], small, num, where))
    if not small:
        lines.append(f"| (notes: bare diffusers on an H200) | {NOTES_BARE_S_PER_STEP:.3f} | | | | | | | | |")
    lines.append("")
    lines.append(f"{r['speed_support_note']} Step cache interval {STEP_CACHE_INTERVAL}; hot-swap runs of "
                 f"{r['hotswap_steps']} steps; 'loop' = time between transformer calls.")
    lines.append("fp8 linear layers (of all the transformer's): " + ", ".join(
        f"{name} {row['fp8_linears'][0]}/{row['fp8_linears'][1]}" for name, row in r["paths"].items()))
    return "\n".join(lines)

