"""The events of what the page keeps: History (pick, star, clear and undo, compare, restore),
presets, a PNG's recipe (shown, then applied), and the LoRA library built from them."""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from ui import history as history_lib
from ui import lora_library as library
from ui import other_tabs, png_restore, results
from ui import presets as presets_lib
from ui.form import PRESET_FIELDS, RESTORED_FIELDS
from ui.layout import Page
from ui.region_editor import show_restored
from ui.wiring_common import PRIVATE, PRIVATE_FAST, Context, gradio_cache, show_tint

MASK_SECONDS = 86_400  # a PNG's mask waits this long for its image 1 (Gradio keeps uploads a day too)


def wire_history(demo: gr.Blocks, page: Page, ctx: Context) -> Any:
    """History's events; returns the restore's last event: the restored run is then the page's run."""
    restored = [page.form[name] for name in RESTORED_FIELDS]
    history_buttons = [page.history_selected, page.history_restore, page.history_star, page.history_compare]
    wire_history_merge(demo, page, ctx, history_buttons)
    changed = page.other_tabs.history_changed
    page.history_gallery.select(history_lib.pick_run, page.history, history_buttons, **PRIVATE_FAST)
    # Queued: a star past the starred runs' room is refused with a warning, which needs the queue.
    page.history_star.click(partial(history_lib.star, outputs_root=ctx.outputs.root),
                            [page.history, page.history_selected], changed, show_progress="hidden", **PRIVATE)
    # Clear asks (a second click within a few seconds), then offers Undo for a few seconds.
    clearing = [page.history_armed, page.history_cleared, page.history_clear, page.history_undo, page.history_timer]
    # What it clears goes, the picked run with it if it goes (a starred one stays picked).
    page.history_clear.click(history_lib.clear_click, [page.history, page.history_armed], [changed, *clearing],
                             **PRIVATE_FAST)
    # A/B against any past run: the selected result (A) and the picked run's first image (B).
    page.history_compare.click(partial(history_lib.compare_with_run, outputs_root=ctx.outputs.root),
                               [page.gallery, page.selected, page.history, page.history_selected], page.compare,
                               **PRIVATE)
    page.history_undo.click(history_lib.undo_clear, [page.history_cleared, page.history],
                            [changed, page.history_cleared, page.history_undo], **PRIVATE_FAST)
    page.history_gallery.change(history_lib.clear_button, page.history_gallery, page.history_clear, **PRIVATE_FAST)
    page.history_timer.tick(history_lib.clear_tick, [page.history_armed, page.history_cleared], clearing,
                            **PRIVATE_FAST)
    # A dropped PNG's recipe is shown first; Apply sets the form. The `restore` API applies at once.
    # A region edit's PNG also brings its mask back: the restored mask once image 1 is there (ui/png_restore.py).
    # The masks are written under a folder of their own in Gradio's cache, each kept a day (as
    # Gradio keeps uploads), under the cache's cap: a stranger dropping PNG after PNG does not fill the disk.
    recipe_mask, masks = gr.State(None), Path(tempfile.mkdtemp(prefix="studio-masks-", dir=gradio_cache(demo)))

    def mask_file(path: str | None) -> str | None:
        return png_restore.mask_file(path, lambda: results.fresh_folder(masks, keep_seconds=MASK_SECONDS))

    for trigger in (page.recipe_file.upload, page.recipe_file.clear):
        trigger(png_restore.preview_png, page.recipe_file, [page.recipe_read, page.recipe_preview, page.recipe_apply],
                **PRIVATE)
        trigger(mask_file, page.recipe_file, recipe_mask, **PRIVATE)
    show_tint(page.recipe_apply.click(
        partial(png_restore.apply_png, setup=ctx.setup), [page.recipe_read, page.lora_version],
        [*restored, page.lora_version, page.status], **PRIVATE,
    ).then(png_restore.apply_mask, [recipe_mask, page.slots[0]],
           [page.restored_mask, page.waiting_mask, page.region.only_painted], **PRIVATE,
           ).then(show_restored, [page.slots[0], page.restored_mask], page.region.tint, **PRIVATE_FAST),
        page.region, page.slots[0])
    gr.Button(visible=False).click(
        partial(png_restore.restore_png, setup=ctx.setup), [page.recipe_file, page.lora_version],
        [*restored, page.lora_version, page.status], api_name="restore", api_visibility="undocumented",
    )
    return show_tint(page.history_restore.click(
        partial(history_lib.restore_run, setup=ctx.setup, outputs_root=ctx.outputs.root,
                slot_count=len(page.slots)),
        [page.history, page.history_selected, page.lora_version],
        [*restored, page.lora_version, *page.slots, page.gallery, page.status, page.restored_mask,
         page.region.only_painted],
        **PRIVATE,  # queued: its warning
    ).then(partial(history_lib.restored_run, outputs_root=ctx.outputs.root), [page.history, page.history_selected],
           [page.last_run, page.seed_used, page.details], **PRIVATE,
           ).then(show_restored, [page.slots[0], page.restored_mask], page.region.tint, **PRIVATE_FAST),
        page.region, page.slots[0])


def wire_history_merge(demo: gr.Blocks, page: Page, ctx: Context, history_buttons: list) -> None:
    """History and the LoRA library shown at the load, and History's one writer in a tab: the merge
    of this tab's changes and the other tabs' (ui/other_tabs.py)."""
    # History has one writer per tab, the merge of the other tabs' runs: a finished run (and a
    # sweep's, a queued run's), a star, a Clear and its Undo are changes handed to it (`changed`).
    # A run's and a sweep's come with their Done (ui/wiring.py wire_run, ui/history.py with_landing).
    for changes in (page.other_tabs.history_changed, page.other_tabs.run_landed, page.other_tabs.sweep_landed):
        changes.change(None, changes, None, js=other_tabs.changed_js(other_tabs.HISTORY), **PRIVATE_FAST)
    # History and the library as kept, then what no write of History holds yet (a reload right after
    # Done) merged in. Not both at once: what the load read could come after what the merge brought
    # (a busy server), and hide the run's card and its LoRAs.
    kept = [page.history, page.presets, page.form["backend"]]

    def shown_at_load(history: Any, presets: Any, backend_name: str | None) -> tuple[list, list, list]:
        return history_lib.gallery_items(history), *library_shown(history, presets, backend_name, ctx)

    demo.load(shown_at_load, kept, [page.history_gallery, page.lora_library, page.lora_entries], **PRIVATE_FAST,
              ).then(None, None, None, js=other_tabs.REPLAY_JS, **PRIVATE_FAST)
    # The browser's other tabs: what this one writes, they merge in, and the other way round.
    # One merge at a time, and a message that comes meanwhile is merged right after (always_last:
    # Gradio's default drops a click while the last one runs, and the message waited for the next).
    page.history.change(None, page.history, None, js=other_tabs.wrote_js(other_tabs.HISTORY), **PRIVATE_FAST)
    # The browser refused a write (its storage for the site full): say so (queued: a warning).
    page.other_tabs.not_kept.click(other_tabs.warn_not_kept, page.other_tabs.message, None,
                                   js=other_tabs.NOT_KEPT_JS, **PRIVATE)
    # A browser that lets the site keep nothing: History and presets live in the page; say so.
    demo.load(other_tabs.warn_not_kept, page.other_tabs.message, None, js=other_tabs.BLOCKED_JS, **PRIVATE)
    page.other_tabs.history.click(other_tabs.history_from_other_tab,
                                  [page.history, page.other_tabs.message, page.history_selected],
                                  [page.history, page.history_gallery, *history_buttons],
                                  js=other_tabs.take_js(other_tabs.HISTORY), trigger_mode="always_last",
                                  **PRIVATE_FAST)


def wire_presets(demo: gr.Blocks, page: Page, ctx: Context) -> None:
    preset_inputs = [page.form[name] for name in PRESET_FIELDS]

    def export_file(all_presets: dict | None) -> Any:
        """The export button holds the current presets as a JSON file, enabled while there is one."""
        exported = presets_lib.export_presets(all_presets, results.fresh_folder(ctx.downloads)) if all_presets else None
        return gr.update(value=exported, interactive=exported is not None)

    # Queued (PRIVATE), so that a handler's gr.Warning reaches the page; none of them raises. The
    # presets have one writer per tab, as History has, the merge of the other tabs' presets: a
    # preset saved, imported, renamed or deleted is a change handed to it (other_tabs.handed_over).
    changed, pick = page.other_tabs.presets_changed, page.preset_pick
    page.preset_save.click(other_tabs.handed_over(presets_lib.save_preset_handler),
                           [page.presets, page.preset_name, *preset_inputs], [changed, pick], **PRIVATE)
    page.preset_load.click(partial(presets_lib.load_preset, setup=ctx.setup), [page.presets, pick, page.lora_version],
                           [*preset_inputs, page.lora_version], **PRIVATE)
    page.preset_import.upload(other_tabs.handed_over(presets_lib.import_presets_handler),
                              [page.presets, page.preset_import], [changed, pick], **PRIVATE)
    page.preset_rename.click(other_tabs.handed_over(presets_lib.rename_preset_handler),
                             [page.presets, pick, page.preset_name], [changed, pick], **PRIVATE)
    page.preset_delete.click(other_tabs.handed_over(presets_lib.delete_preset_handler), [page.presets, pick],
                             [changed, pick], **PRIVATE)
    for field in (page.preset_name, pick):
        field.change(presets_lib.preset_buttons, [page.preset_name, pick],
                     [page.preset_save, page.preset_load, page.preset_rename, page.preset_delete], **PRIVATE_FAST)
    changed.change(None, changed, None, js=other_tabs.changed_js(other_tabs.PRESETS), **PRIVATE_FAST)
    page.presets.change(None, page.presets, None, js=other_tabs.wrote_js(other_tabs.PRESETS), **PRIVATE_FAST)
    page.other_tabs.presets.click(other_tabs.presets_from_other_tab, [page.presets, page.other_tabs.message, pick],
                                  [page.presets, pick], js=other_tabs.take_js(other_tabs.PRESETS),
                                  trigger_mode="always_last", **PRIVATE_FAST,
                                  ).then(export_file, page.presets, page.preset_export, **PRIVATE_FAST)
    demo.load(lambda p: (gr.update(choices=presets_lib.preset_names(p)), export_file(p)), page.presets,
              [page.preset_pick, page.preset_export], **PRIVATE_FAST)


def wire_library(demo: gr.Blocks, page: Page, ctx: Context) -> None:
    """The LoRA library, kept up to date with History, presets and the backend (shown at the load
    with History: wire_history_merge); a click on an entry adds its LoRA to the stack at its last scale."""
    # A change while the last one's refresh is still out is refreshed right after it (always_last):
    # the one trigger mode that neither drops the newest change nor shows an older one after it.
    triggers = [page.history.change, page.presets.change, page.form["backend"].change]
    gr.on(triggers, partial(library_shown, ctx=ctx), [page.history, page.presets, page.form["backend"]],
          [page.lora_library, page.lora_entries], trigger_mode="always_last", **PRIVATE_FAST)

    def picked(rows: Any, version: float, entries: list, event: gr.SelectData) -> tuple[Any, Any]:
        return library.add_to_stack(rows, version, entries, event.index)

    page.lora_library.select(picked, [page.form["loras"], page.lora_version, page.lora_entries],
                             [page.form["loras"], page.lora_version], concurrency_id="lora-editor",
                             concurrency_limit=1, **PRIVATE)


def library_shown(history: Any, presets: Any, backend_name: str | None, ctx: Context) -> tuple[list, list]:
    """The library's tiles and entries: the LoRAs of History and the presets, and the backend's folder."""
    backend = ctx.backends.get(backend_name or "") or next(iter(ctx.backends.values()))
    entries = library.library_entries(history, presets, backend.lora_folder())
    triggers = {e["path"]: backend.known_trigger_words(e["path"]) for e in entries}
    return library.library_items(entries, triggers), entries
