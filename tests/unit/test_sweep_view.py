"""The sweep on the page, in this process against the fake fal server: the default axis, every
cell shown from the first update (queued, running, done), short captions, the zip's names, the
History card, and a picked cell used as input or restored (the browser: test_browser_sweep.py)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

import ui.sweep_view
from backend.events import Progress, Result, ResultImage
from backend.fal import FalBackend, FalOptions, FalSettings
from backend.request import build_request
from tests.helpers.app import SERVER_KEY
from ui import history as history_lib
from ui import sweep_cells
from ui.form import RESTORED_FIELDS, PageSetup
from ui.run import Outputs, RunPlan
from ui.sweep_view import default_axis, follow_loras, run_sweep_view, stopped_cells, stopped_sweep

SETUP = PageSetup(("fal",), "fal", False, (), "", "gpu")


class OneCellAtATime(FalBackend):
    """fal, one cell at a time (as on a local GPU), so that a cell waits its turn."""

    concurrent_runs = 1


def test_the_x_axis_is_the_seed_until_a_lora_is_on_and_never_overrides_the_visitors_choice():
    assert default_axis([]) == ("seed", "1, 2, 3, 4")
    assert default_axis(None) == ("seed", "1, 2, 3, 4")
    assert default_axis([{"path": "", "scale": 1, "enabled": True}]) == ("seed", "1, 2, 3, 4")  # no LoRA yet
    assert default_axis([{"path": "owner/style", "scale": 1, "enabled": False}]) == ("seed", "1, 2, 3, 4")
    assert default_axis([{"path": "owner/style", "scale": 1, "enabled": True}]) == ("lora1_scale",
                                                                                    "0.4, 0.7, 1.0, 1.3")
    assert default_axis("not a list") == ("seed", "1, 2, 3, 4")
    on = [{"path": "owner/style", "scale": 1, "enabled": True}]
    assert follow_loras(on, edited=False) == ("lora1_scale", "0.4, 0.7, 1.0, 1.3")
    x, values = follow_loras(on, edited=True)  # the visitor chose the axis: nothing changes
    assert isinstance(x, type(gr.skip())) and isinstance(values, type(gr.skip()))


def sweep_view(images, tmp_path, x_key="seed", x_values="1, 2", y_key=None, y_values="", backend=None):
    """The page's sweep, its updates as they come (closing it is a Stop's cancel)."""
    request = build_request(prompt="make it blue", image_urls=[str(images["red"])], seed=7,
                            loras=[{"path": "owner/style", "scale": 1.0}])
    backend = backend or OneCellAtATime(FalSettings(poll_interval=0.05), server_key=SERVER_KEY)
    plan = RunPlan(backend=backend, request=request, options=FalOptions())
    return run_sweep_view(plan, Outputs(tmp_path), x_key, x_values, y_key, y_values)


def sweep_updates(pointed, images, tmp_path, x_key="seed", x_values="1, 2", y_key=None, y_values="",
                  backend=None):
    return list(sweep_view(images, tmp_path, x_key, x_values, y_key, y_values, backend))


def until(sweep, shown) -> tuple:
    """The sweep's updates up to the first whose cells' captions are `shown` (a list, or a test
    of the list): e.g. what the page shows when its Stop comes."""
    return next(update for update in sweep if (shown(captions(update)) if callable(shown) else
                                               captions(update) == shown))


def gallery(update: tuple) -> list:
    """An update's cells as Gradio hands the gallery to a handler: (path, caption) pairs."""
    return [(path, caption) for path, caption in update[0]]


def captions(update) -> list[str]:
    return [caption for _path, caption in update[0]]


def without_step(status: str) -> str:
    """The status line without the running cell's step (" · step 2 of 4")."""
    return re.sub(r" · step \d+ of \d+$", "", status)


def test_every_cell_shows_its_state_from_the_first_update_then_its_image(pointed, images, tmp_path):
    pointed.job_seconds = 0.6
    updates = sweep_updates(pointed, images, tmp_path, "lora1_scale", "0.4, 0.7")
    first = updates[0]
    assert captions(first) == ["running · lora1 0.4", "queued · lora1 0.7"]
    assert first[1] == "⚙️ Sweep: 0 of 2 cells done, cell 1 running"
    placeholders = [Path(path) for path, _caption in first[0]]
    assert all(p.suffix == ".png" and p.is_file() for p in placeholders)
    assert placeholders[0] != placeholders[1]  # running and queued look different
    seen = [(captions(u), without_step(u[1])) for u in updates]
    halfway = (["lora1 0.4", "running · lora1 0.7"], "⚙️ Sweep: 1 of 2 cells done, cell 2 running")
    assert halfway in seen
    assert seen.index(halfway) < len(seen) - 1
    # Until cell 1 is done, every update names it once ("cells 1, 1 running" was seen in Chromium).
    assert {status for _c, status in seen[:seen.index(halfway)]} == {first[1]}
    last = updates[-1]
    assert captions(last) == ["lora1 0.4", "lora1 0.7"] and last[1] == "✅ Sweep done: 2 of 2 cells"
    assert all(Path(path).is_file() and tmp_path in Path(path).parents for path, _c in last[0])


def test_a_running_cell_shows_its_intermediate_image_and_the_status_its_step(pointed, images, tmp_path):
    """One cell at a time (as on a local GPU): the running cell's grey square gives way to its
    intermediate image as the backend sends one, and the status line says the cell's step, which
    never goes back. Several cells at once (fal): each shows its own image, and no step is said
    while two run. The intermediate files are thrown away with the sweep."""
    pointed.job_seconds = 1.0
    request = build_request(prompt="make it blue", image_urls=[str(images["red"])], seed=7,
                            loras=[{"path": "owner/style", "scale": 1.0}])
    for backend, many in ((OneCellAtATime(FalSettings(poll_interval=0.05), server_key=SERVER_KEY), False),
                          (FalBackend(FalSettings(poll_interval=0.05), server_key=SERVER_KEY), True)):
        plan = RunPlan(backend=backend, request=request, options=FalOptions())
        sweep = run_sweep_view(plan, Outputs(tmp_path), "lora1_scale", "0.4, 0.7", None, "")
        grey, shown, steps, many_at_once = None, set(), [], False
        for cells, status, *_ in sweep:
            grey = grey or cells[0][0]
            for (path, caption), values in zip(cells, ("lora1 0.4", "lora1 0.7")):
                if caption == f"running · {values}" and path != grey and Path(path).suffix == ".jpg":
                    assert Image.open(path).size[0] > 0  # there, while the sweep shows it
                    shown.add((values, path))
            if match := re.search(r"cell 1 running · step (\d+) of (\d+)$", status):
                steps.append(int(match[1]))
            if "cells 1–2 running" in status:
                assert "step" not in status, status  # two cells run at once: whose step would it be?
                many_at_once = True
        assert {values for values, _p in shown} == {"lora1 0.4", "lora1 0.7"}, "a running cell showed no image"
        assert not any(Path(path).exists() for _v, path in shown)
        assert many_at_once == many
        if not many:  # the view samples every 0.5 s: how many steps it sees depends on the machine
            assert steps and steps == sorted(steps)


def test_a_stop_turns_the_cells_not_done_into_stopped_and_keeps_the_finished_ones(pointed, images, tmp_path):
    pointed.job_seconds = 0.6
    updates = sweep_updates(pointed, images, tmp_path, "lora1_scale", "0.4, 0.7")
    first = updates[0]  # running, queued
    halfway = next(u for u in updates if captions(u) == ["lora1 0.4", "running · lora1 0.7"])
    stopped = stopped_cells(gallery(first))
    assert [c for _p, c in stopped] == ["stopped · lora1 0.4", "stopped · lora1 0.7"]
    shown = {Path(path) for path, _c in first[0]}
    assert len({Path(path) for path, _c in stopped}) == 1 and not {Path(p) for p, _c in stopped} & shown
    stopped = stopped_cells(gallery(halfway))
    assert [c for _p, c in stopped] == ["lora1 0.4", "stopped · lora1 0.7"]
    assert stopped[0][0] == halfway[0][0][0]  # the finished cell keeps its image
    # Nothing waited (a run was stopped, or the sweep had finished): the cells are left as they are.
    assert stopped_cells(gallery(updates[-1])) == gr.skip()
    assert stopped_cells(None) == gr.skip()


def test_a_sweep_stopped_with_cells_done_keeps_them_grid_zip_and_history_card(pointed, images, tmp_path):
    pointed.job_seconds = 0.6
    sweep = sweep_view(images, tmp_path, "lora1_scale", "0.4, 0.7")
    halfway = until(sweep, ["lora1 0.4", "running · lora1 0.7"])
    outputs = Outputs(tmp_path)
    cells, status, grid, zipped, state, change = stopped_sweep(gallery(halfway), halfway[-1], outputs)
    sweep.close()  # the cancel
    assert [c for _p, c in cells] == ["lora1 0.4", "stopped · lora1 0.7"]
    assert cells[0][0] == halfway[0][0][0]
    assert status.startswith("⏹ Stopped. 1 of 2 cells were done: they are kept")
    assert Path(grid).is_file() and Image.open(grid).size[0] > 0
    assert zipped["interactive"]
    with zipfile.ZipFile(zipped["value"]) as archive:
        assert sorted(archive.namelist()) == ["grid.png", "lora1-scale-0.4.png", "sweep.json"]
    (entry,) = change["value"]  # its History card, the grid as its picture
    assert entry["thumbs"] == [history_lib.thumbnail(grid, whole=True)]
    assert entry["sweep"]["stopped"] == [1] and entry["images"] == [cells[0][0]]
    assert history_lib.gallery_items([entry])[0][1].startswith("Sweep 2×1: make it blue")
    assert state["run"] is not None and "keeper" not in state  # kept once: a second Stop keeps nothing more
    assert stopped_sweep(cells, state, outputs)[1:] == (gr.skip(),) * 5
    # Restored from History: the cell it did not make says "stopped", not "failed".
    restored = sweep_cells.restore_sweep([entry], entry["id"], tmp_path)
    assert [c for _p, c in restored[0]] == ["lora1 0.4", "stopped · lora1 0.7"]
    for junk in (5, "1", {"a": 1}, [None, "x"]):  # History comes from the browser
        forged = {**entry, "sweep": {**entry["sweep"], "stopped": junk}}
        assert [c for _p, c in sweep_cells.restore_sweep([forged], entry["id"], tmp_path)[0]] == [
            "lora1 0.4", "failed · lora1 0.7"]
    # Nothing done yet, or a sweep that had finished: nothing to keep (the first only says "stopped").
    sweep = sweep_view(images, tmp_path, "lora1_scale", "0.4, 0.7")
    first = next(sweep)
    nothing = stopped_sweep(gallery(first), first[-1], outputs)
    assert [c for _p, c in nothing[0]] == ["stopped · lora1 0.4", "stopped · lora1 0.7"]
    assert nothing[1:] == (gr.skip(),) * 5
    sweep.close()
    updates = sweep_updates(pointed, images, tmp_path, "lora1_scale", "0.4, 0.7")
    assert stopped_sweep(gallery(updates[-1]), updates[-1][-1], outputs) == (gr.skip(),) * 6


def test_a_cell_saved_as_stop_came_is_kept_and_a_cell_ending_after_it_is_not_saved(pointed, images, tmp_path):
    """Stop is clicked while the page shows cell 2 running; cell 2 is saved before the cancel
    lands, and the update saying so is never shown. It is kept with cell 1 (it was on disk but in
    no grid, zip or History card). Cell 3, which ends after the Stop took the sweep, is not saved."""
    pointed.job_seconds = 0.6
    sweep = sweep_view(images, tmp_path, "lora1_scale", "0.4, 0.7, 1.0")
    shown = until(sweep, ["lora1 0.4", "running · lora1 0.7", "queued · lora1 1"])
    until(sweep, lambda shown: shown[1] == "lora1 0.7")  # made, never shown
    cells, status, grid, zipped, state, change = stopped_sweep(gallery(shown), shown[-1], Outputs(tmp_path))
    assert [c for _p, c in cells] == ["lora1 0.4", "lora1 0.7", "stopped · lora1 1"]
    assert status.startswith("⏹ Stopped. 2 of 3 cells were done: they are kept")
    with zipfile.ZipFile(zipped["value"]) as archive:
        assert sorted(archive.namelist()) == ["grid.png", "lora1-scale-0.4.png", "lora1-scale-0.7.png", "sweep.json"]
    (entry,) = change["value"]
    assert entry["sweep"]["stopped"] == [2] and len(entry["images"]) == 2
    saved = sorted(p.parent for p in tmp_path.rglob("recipe.json"))
    assert len(saved) == 2
    rest = list(sweep)  # the cancel has not landed yet: cell 3 runs to its end
    assert not any(captions(update)[2] == "lora1 1" for update in rest)
    assert sorted(p.parent for p in tmp_path.rglob("recipe.json")) == saved


def test_a_cell_that_ended_unheard_is_not_shown_running_beside_the_next(images, tmp_path, monkeypatch):
    # One cell at a time: the pool starts cell 2 the moment cell 1 ends, which can be before the
    # view hears of that end; a heartbeat then showed "0 of 2 cells done, cells 1–2 running" (seen
    # once in CI). The sweep's own order of events, with that timing made certain:
    png = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(png, "PNG")
    result = Result(images=(ResultImage(png.getvalue(), "image/png", 16, 16),), seed=1)

    def cells_ending_unheard(backend, plan, options, key=None, started=None, region=None, watch=None):
        started(1)  # cell 2 handed to the backend: cell 1 has ended …
        yield None  # … and a heartbeat comes before cell 1's result reaches the view
        yield 0, result
        yield None
        yield 1, result

    monkeypatch.setattr(ui.sweep_view, "run_sweep", cells_ending_unheard)
    updates = sweep_updates(None, images, tmp_path, "lora1_scale", "0.4, 0.7")
    assert [u[1] for u in updates] == [
        "⚙️ Sweep: 0 of 2 cells done, cell 1 running",
        "⚙️ Sweep: 0 of 2 cells done, cell 1 running",  # not "cells 1–2": one runs at a time
        "⚙️ Sweep: 1 of 2 cells done, cell 2 running",
        "⚙️ Sweep: 1 of 2 cells done, cell 2 running",
        "⚙️ Sweep: 2 of 2 cells done",
        "✅ Sweep done: 2 of 2 cells",
    ]
    assert captions(updates[1]) == ["running · lora1 0.4", "queued · lora1 0.7"]


def test_cells_running_at_once_say_how_far_the_whole_sweep_is(images, tmp_path, monkeypatch):
    # fal runs the cells at once: "0 of 2 cells done" until they all ended, and Run's fill (which
    # follows the status line) stood still. Now their steps count in: the sweep's share made.
    png = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(png, "PNG")
    result = Result(images=(ResultImage(png.getvalue(), "image/png", 16, 16),), seed=1)

    def cells_at_once(backend, plan, options, key=None, started=None, region=None, watch=None):
        yield None  # started, no step yet
        watch(0, Progress("Step 2 of 8", step=2, total=8))
        watch(1, Progress("Step 6 of 8", step=6, total=8))
        yield None
        watch(0, Progress("Step 1 of 8", step=1, total=8))  # an older step, heard late: not counted
        yield None
        yield 1, result
        watch(1, Progress("Step 8 of 8", step=8, total=8))  # a done cell's last report, heard late: counted once
        watch(0, Progress("Step 5 of 8", step=5, total=8))
        yield None
        yield 0, result

    monkeypatch.setattr(ui.sweep_view, "run_sweep", cells_at_once)
    backend = FalBackend(FalSettings(poll_interval=0.05), server_key=SERVER_KEY)
    updates = sweep_updates(None, images, tmp_path, "lora1_scale", "0.4, 0.7, 1.0, 1.3", backend=backend)
    assert [u[1] for u in updates] == [
        "⚙️ Sweep: 0 of 4 cells done, cells 1–4 running",
        "⚙️ Sweep: 0 of 4 cells done, cells 1–4 running",
        "⚙️ Sweep: 0 of 4 cells done, cells 1–4 running · 25% of the sweep",  # (2/8 + 6/8) of 4 cells
        "⚙️ Sweep: 0 of 4 cells done, cells 1–4 running · 25% of the sweep",
        "⚙️ Sweep: 1 of 4 cells done, cells 1, 3, 4 running · 31% of the sweep",  # 1 + 2/8 of 4
        "⚙️ Sweep: 1 of 4 cells done, cells 1, 3, 4 running · 40% of the sweep",  # 1 + 5/8 of 4, rounded down
        "⚙️ Sweep: 2 of 4 cells done, cells 3–4 running",
        "✅ Sweep done: 2 of 4 cells",
    ]


def test_captions_carry_every_axis_value_and_the_zip_names_its_files_by_them(pointed, images, tmp_path):
    pointed.job_seconds = 1.2  # long enough for updates while the four cells run
    backend = FalBackend(FalSettings(poll_interval=0.05), server_key=SERVER_KEY)
    updates = sweep_updates(pointed, images, tmp_path, "lora1_scale", "0.4, 0.7", "seed", "1, 2", backend=backend)
    assert updates[0][1] == "⚙️ Sweep: 0 of 4 cells done, cells 1–4 running"  # hosted cells run at once
    before_the_first_cell = [u[1].split(" · ")[0] for u in updates if "0 of 4" in u[1]]  # less their progress
    assert len(before_the_first_cell) > 1 and set(before_the_first_cell) == {updates[0][1]}
    gallery, status, grid, zipped, _state = updates[-1]
    assert [c for _p, c in gallery] == ["lora1 0.4 · seed 1", "lora1 0.7 · seed 1",
                                        "lora1 0.4 · seed 2", "lora1 0.7 · seed 2"]
    assert Path(zipped).name == "sweep_lora1-scale_x_seed.zip"
    with zipfile.ZipFile(zipped) as archive:
        assert sorted(archive.namelist()) == sorted([
            "lora1-scale-0.4_seed-1.png", "lora1-scale-0.7_seed-1.png", "lora1-scale-0.4_seed-2.png",
            "lora1-scale-0.7_seed-2.png", "grid.png", "sweep.json"])
        assert archive.read("grid.png") == Path(grid).read_bytes()


def test_a_lora_scale_axis_with_no_lora_on_is_refused_naming_the_axis(pointed, images, tmp_path):
    request = build_request(prompt="make it blue", image_urls=[str(images["red"])])
    backend = FalBackend(FalSettings(poll_interval=0.05), server_key=SERVER_KEY)
    view = run_sweep_view(RunPlan(backend, request, FalOptions()), Outputs(tmp_path), "lora1_scale", "0.4, 0.7",
                          None, "")
    assert "LoRA 1 scale: LoRA 1 is not switched on" in next(view)[1]
    with pytest.raises(gr.Error, match="LoRA 1 is not switched on"):
        next(view)
    assert not pointed.jobs  # nothing ran


def test_a_sweep_is_one_history_card_with_its_grid_that_restores_its_cells_and_zip(pointed, images, tmp_path):
    updates = sweep_updates(pointed, images, tmp_path, "seed", "1, 2")
    *_rest, (_gallery, _status, grid, made_zip, state) = updates
    # The card comes with the sweep's Done, in its last update, and not before.
    landing = [u[-1] for u in history_lib.with_landing(lambda _values: iter(updates), {},
                                                       saved_run=sweep_cells.sweep_run)]
    assert landing[:-1] == [None] * (len(updates) - 1)
    past = landing[-1]["value"]
    items = history_lib.gallery_items(past)
    assert len(past) == 1  # one card
    assert past[0]["thumbs"] == [history_lib.thumbnail(grid, whole=True)]  # the card shows the grid
    (_thumb, caption), = items
    assert caption.startswith("Sweep 2×1: make it blue")
    # The base recipe: the form's request (LoRA at its own scale), not one cell's.
    assert past[0]["recipe"]["request"]["loras"][0]["scale"] == 1.0
    cells, shown_grid, zipped, _open, restored, *_unpicked = sweep_cells.restore_sweep(past, past[0]["id"], tmp_path)
    assert [c for _p, c in cells] == ["seed 1", "seed 2"] and shown_grid == grid
    assert zipped["value"] == made_zip and zipped["interactive"]  # "Sweep as zip" is this sweep's
    assert restored["cells"] == state["cells"]
    elsewhere = [{**past[0], "sweep": {**past[0]["sweep"], "cells": [["seed 1", "/etc/passwd"]]}}]
    restored = sweep_cells.restore_sweep(elsewhere, past[0]["id"], tmp_path)[4]
    assert restored["cells"] == [{"caption": "seed 1", "image": None}]


def test_a_picked_cell_becomes_the_input_or_gives_back_its_settings(pointed, images, tmp_path):
    *_rest, (_g, _s, _grid, _zip, state) = sweep_updates(pointed, images, tmp_path, "seed", "1, 2")
    slots = sweep_cells.use_cell_as_input(state, 1, tmp_path, 3)
    assert slots == (state["cells"][1]["image"], None, None)
    *values, version, status = sweep_cells.restore_cell(state, 1, 4, SETUP, tmp_path)
    restored = dict(zip(RESTORED_FIELDS, values))
    assert restored["seed"] == 2 and restored["prompt"] == "make it blue" and version == 5
    assert status == "♻️ Restored the settings of the sweep cell seed 2."
    # Nothing picked, or a cell with no image: nothing changes (a warning, not an error).
    assert all(isinstance(v, type(gr.skip())) for v in sweep_cells.use_cell_as_input(state, None, tmp_path, 3))
    unfinished = {"cells": [{"caption": "seed 1", "image": None}]}
    assert all(isinstance(v, type(gr.skip())) for v in sweep_cells.restore_cell(unfinished, 0, 0, SETUP, tmp_path))
