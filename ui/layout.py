"""The page's components, laid out: the form on the left, results on the right.

Form fields come from the spec (ui/form.py), which takes their labels, limits and help texts from
the request and options models; this module only decides where each goes. It returns a `Page`
holding every component the events need; the events themselves are wired in ui/wiring.py.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui import components
from ui.dropped import DropInputs, drop_inputs
from ui.examples import project_examples
from ui.form import FIELDS, NAMES, PageSetup
from ui.history import CLEAR_LABEL
from ui.key_box import key_box
from ui.lora_editor import lora_editor
from ui.other_tabs import OtherTabInputs, other_tab_inputs
from ui.png_restore import APPLY_LABEL
from ui.queue_panel import QueuePanel, queue_panel
from ui.region_editor import RegionEditor, region_editor
from ui.sweep_view import AXIS_CHOICES, DEFAULT_X, DEFAULT_X_VALUES, sweep_cost

NO_KEY_HELP = (
    "No fal key on this server: paste **your own fal API key** to run (create one at "
    "[fal.ai](https://fal.ai/dashboard/keys)). Used only for your runs: never stored, logged or sent back."
)
OWN_KEY_HELP = (
    "With **your own fal key** (create one at [fal.ai/dashboard/keys](https://fal.ai/dashboard/keys)) your "
    "runs are yours to pay and have none of the limits of this server's key. It is used only for your runs: "
    "never stored, logged or sent back to this page."
)
LOGIN_HELP = "This server's fal key serves only visitors signed in with Hugging Face. "
FAL_ONLY = "fal only: not used by the local backend"
RUN_LABEL = "Run"
RUNNING_LABEL = "Running"  # page.js adds " · step i/n"
TOOL_WIDTH = 120  # px: the results' small buttons, narrower than Gradio's 160 so they share lines
# Gradio attaches event methods (.click, .change…) at run time, unseen by type checkers: components are typed loosely.
Component = Any


class Page:
    """Every component the events need. Form fields are in `form`, by the spec's names."""

    form: dict[str, Component]
    lora_version: gr.Number
    lora_note: gr.Markdown  # under the LoRA rows: their problems as typed, and a refused run's
    lora_check: gr.Markdown  # under the note: what each LoRA is, from its header (format, rank, model)
    lora_library: gr.Gallery  # every LoRA used before and the LoRA folder's; a click adds one
    region: RegionEditor  # image 1 with a brush layer: its strokes become the `mask` field
    restored_mask: gr.State
    waiting_mask: gr.State
    lora_entries: gr.State
    slots: list[Component]
    move_buttons: list[gr.Button]
    local_slot_rows: list[gr.Row]
    references_hint: gr.Markdown
    run_button: gr.Button
    run_cost: gr.Markdown
    stop_button: gr.Button
    examples: Any  # gr.Examples
    key_group: gr.Accordion
    key_box: gr.HTML  # typed into; held by the page, put into each event's fal_key (ui/key_box.py)
    local_panel: gr.Accordion
    custom_size: gr.Row
    preset_name: gr.Textbox
    preset_save: gr.Button
    preset_pick: gr.Dropdown
    preset_load: gr.Button
    preset_rename: gr.Button
    preset_delete: gr.Button
    preset_export: gr.DownloadButton
    preset_import: gr.UploadButton
    sweep_x: gr.Dropdown
    sweep_x_values: gr.Textbox
    sweep_y: gr.Dropdown
    sweep_y_values: gr.Textbox
    sweep_cost: gr.Markdown
    sweep_button: gr.Button
    recipe_file: gr.File
    recipe_preview: gr.Markdown
    recipe_apply: gr.Button
    recipe_read: gr.State
    status: gr.Markdown
    gallery: gr.Gallery
    use_input: gr.Button
    add_reference: gr.Button
    download_png: gr.DownloadButton
    download_zip: gr.DownloadButton
    seed_used: gr.Textbox
    api_seed: gr.Number
    reuse_seed: gr.Button
    details: gr.Markdown
    code_client: gr.Code
    code_fal: gr.Code
    code_recipe: gr.Code
    compare_mode: gr.Radio
    ab_row: gr.Row
    pick_a: gr.Dropdown
    pick_b: gr.Dropdown
    compare: gr.ImageSlider
    sweep_results: gr.Accordion
    sweep_gallery: gr.Gallery
    sweep_grid: gr.Image
    sweep_zip: gr.DownloadButton
    sweep_use_input: gr.Button
    sweep_restore: gr.Button
    sweep_state: gr.State  # {"cells": [{caption, image}], "run"} (ui/sweep_view.py)
    sweep_picked: gr.State  # the picked cell's index
    sweep_edited: gr.State  # the visitor chose the X axis: the LoRA list no longer sets it
    queue_button: gr.Button
    queue: QueuePanel
    history_gallery: gr.Gallery
    history_restore: gr.Button
    history_star: gr.Button
    history_clear: gr.Button
    logs: gr.Textbox
    selected: gr.State
    history_selected: gr.State
    history_undo: gr.Button
    history_compare: gr.Button
    history_armed: gr.State
    history_cleared: gr.State
    history_timer: gr.Timer
    last_run: gr.State
    history: gr.BrowserState
    presets: gr.BrowserState
    other_tabs: OtherTabInputs  # History and presets from this browser's other tabs (ui/other_tabs.py)
    dropped: DropInputs  # a picture dropped from another site, fetched by the server (ui/dropped.py)

    def inputs(self) -> list[Component]:
        """The form's components in the spec's order: what every run event takes."""
        return [self.form[name] for name in NAMES]

    def owned_by(self, owner: str) -> list[Component]:
        return [self.form[name] for name, f in FIELDS.items() if f.owner == owner]


def build_layout(setup: PageSetup) -> Page:
    """Lay the page out inside the current gr.Blocks."""
    page = Page()
    page.form = {}
    # The title and its line share a line where they fit (assets/style.css): more of the form on the first screen.
    gr.Markdown("# FLUX.2 LoRA Edit Studio\nEdit images with FLUX.2 [dev] and your LoRAs.", elem_id="page-head")
    if setup.show_login:  # on a Space, or when the server's key needs a signed-in visitor
        gr.LoginButton(size="sm")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=360):
            _inputs(page, setup)
            _settings(page, setup)
            _presets(page)
            _sweep(page)
            with gr.Accordion("Restore settings from a PNG made here", open=False):
                page.recipe_file = gr.File(label="Drop a PNG from this studio", file_types=[".png"],
                                           type="filepath", elem_id="recipe-drop")
                # What the PNG holds is shown first; "Apply" sets the form (ui/png_restore.py).
                page.recipe_preview = gr.Markdown("", elem_id="recipe-preview")
                page.recipe_apply = gr.Button(APPLY_LABEL, size="sm", elem_id="recipe-apply", interactive=False)
        with gr.Column(scale=6, min_width=360):
            _results(page)
            _compare(page)
            page.queue = queue_panel()
            _history(page)
    page.selected = gr.State(0)  # the result the tools act on (the gallery's selection)
    page.history_selected = gr.State(None)
    page.history_armed = gr.State(None)  # ticks since Clear was first clicked (ui/history.py clear_click)
    page.history_cleared = gr.State(None)  # what Undo brings back
    page.last_run = gr.State(None)  # the saved run, for the history
    page.recipe_read = gr.State(None)  # the dropped PNG's recipe, until Apply
    # Recipes and thumbnails only, in localStorage: never a key.
    page.history = components.kept_in_browser([], "flux2-studio-history")
    page.presets = components.kept_in_browser({}, "flux2-studio-presets")
    page.other_tabs = other_tab_inputs()
    page.dropped = drop_inputs()
    return page


def _place(page: Page, setup: PageSetup, name: str) -> Component:
    """Make a form field's component from the spec, here in the layout."""
    build = FIELDS[name].build
    assert build is not None, f"{name} is built by the layout itself"
    component = build(setup)
    page.form[name] = component
    return component


def _inputs(page: Page, setup: PageSetup) -> None:
    """Backend, the key (first when the visitor must bring one), reference slots, instruction,
    Run/Stop, examples, the key (else), the local model."""
    _place(page, setup, "backend")
    key_needed = setup.needs_visitor_key or setup.require_login
    if key_needed:  # nothing runs without it: above everything it would be missed under
        _key_box(page, setup, key_needed)
    page.slots, page.move_buttons, page.local_slot_rows = [], [], []
    with gr.Group():
        for row_start, visible in ((1, True), (4, setup.local_first)):
            with gr.Row(visible=visible) as slot_row:
                page.slots += [_place(page, setup, f"image_{i}") for i in range(row_start, row_start + 3)]
            with gr.Row(visible=visible) as swap_row:
                # row 1: swap 1-2, 2-3; row 2: swap 3-4, 4-5, 5-6
                for i in range(1, 3) if row_start == 1 else range(3, 6):
                    page.move_buttons.append(gr.Button(f"⇄ swap {i} and {i + 1}", size="sm", variant="secondary",
                                                       elem_id=f"swap-{i}", interactive=False))
        page.local_slot_rows = [slot_row, swap_row]
    page.references_hint = gr.Markdown(references_hint(setup.max_references.get(setup.default_backend, 3)),
                                       elem_classes=["hint"], elem_id="references-hint")
    _place(page, setup, "prompt")
    # The run bar: sticky in the form column on desktop, fixed at the bottom of a phone (assets/style.css).
    # Run reads "Running" while a run goes (page.js adds " · step i/n"); Stop is enabled only then.
    with gr.Row(elem_classes=["run-bar"], elem_id="run-bar"):
        page.run_button = gr.Button(RUN_LABEL, variant="primary", elem_id="run-button", scale=3)
        page.stop_button = gr.Button("Stop", variant="secondary", elem_id="stop-button", scale=1, interactive=False)
        # Adds the run to the Queue panel, which runs it in the background (ui/queue_view.py).
        page.queue_button = gr.Button("+ Queue", variant="secondary", elem_id="queue-button", scale=1)
    # What Run will cost (fal only), filled when the page loads and as the inputs change (ui/spending_view.py).
    page.run_cost = gr.Markdown("", elem_classes=["hint"], elem_id="run-cost")
    page.examples = project_examples(page.form["prompt"], page.slots[:3])
    # After the examples (a newcomer's way in); the keys only where there is a keyboard.
    gr.Markdown('<span class="keys-hint">Ctrl/Cmd+Enter runs, Escape stops, Ctrl/Cmd+V pastes an image; </span>'
                "Queue (or Run while a run goes) adds a run to the queue.", elem_classes=["hint"], elem_id="run-hint")
    if not key_needed:
        _key_box(page, setup, key_needed)
    with gr.Accordion("Local model", open=False, visible=setup.local_first) as page.local_panel:
        _place(page, setup, "model")
        _place(page, setup, "memory")
        _place(page, setup, "speed")
    page.form["loras"], page.lora_version, page.lora_note, page.lora_check = lora_editor(setup.backends)
    with gr.Accordion("LoRA library", open=False, elem_id="lora-library-panel"):
        gr.Markdown("Every LoRA you have used (History, presets) and the server's LoRA folder, with the "
                    "scale you last used and your last result with it. Click one to add it.", elem_classes=["hint"])
        page.lora_library = gr.Gallery(label="LoRA library", columns=4, height=240, allow_preview=False,
                                       interactive=False, elem_id="lora-library", format="jpeg",
                                       fit_columns=False, object_fit="cover")
        page.lora_entries = gr.State([])  # what the library shows, in order (ui/lora_library.py)
    page.region = region_editor(lambda name: _place(page, setup, name))
    page.restored_mask = gr.State(None)  # a History restore's mask, for the editor once image 1 arrives
    page.waiting_mask = gr.State(None)  # a PNG's mask, waiting for its image 1 to be added again


def _key_box(page: Page, setup: PageSetup, key_needed: bool) -> None:
    """Open when the visitor needs a key of their own; else a closed "Use your own fal key".
    The box is a plain input the page holds, not Gradio (ui/key_box.py says why); a refused
    run's mark goes on this panel (ui/field_checks.py)."""
    with gr.Accordion("Your fal key" if key_needed else "Use your own fal key", open=key_needed,
                      visible=setup.default_backend == "fal", elem_id="own-key") as page.key_group:
        page.key_box = key_box()
        _place(page, setup, "fal_key")
        gr.Markdown(key_help(setup), elem_classes=["hint"])


def _settings(page: Page, setup: PageSetup) -> None:
    """Guidance, steps, size, seed, images, and the advanced settings. The fields a
    backend's options model owns are disabled for the other backend."""
    _place(page, setup, "guidance_scale")
    _place(page, setup, "num_inference_steps")
    _place(page, setup, "size")
    with gr.Row(visible=False) as page.custom_size:
        _place(page, setup, "width")
        _place(page, setup, "height")
    with gr.Row():
        _place(page, setup, "seed")
        _place(page, setup, "randomize_seed")
    _place(page, setup, "num_images")
    with gr.Accordion("Advanced", open=False):
        for name in ("acceleration", "enable_prompt_expansion", "enable_safety_checker", "output_format",
                     "sync_mode"):
            component = _place(page, setup, name)
            if FIELDS[name].owner == "fal" and setup.local_first:
                component.interactive, component.info = False, FAL_ONLY


def _presets(page: Page) -> None:
    with gr.Accordion("Presets", open=False, elem_id="presets-panel"):
        gr.Markdown("A preset keeps the LoRA stack and the settings (not the instruction or images).",
                    elem_classes=["hint"])
        with gr.Row():
            page.preset_name = gr.Textbox(label="Name", placeholder="watercolor 0.8", elem_id="preset-name")
            page.preset_save = gr.Button("Save", size="sm", elem_id="preset-save", interactive=False)
        # Each button is enabled once it can act (ui/presets.py preset_buttons).
        with gr.Row():
            # Custom values allowed: the presets' merge reads the pick, and a pick set by a save
            # before the merge had the new name among the choices was refused ("not in the list of
            # choices"), so the merge never ran. A name that is no preset is refused by Load itself.
            page.preset_pick = gr.Dropdown(label="Preset", choices=[], allow_custom_value=True, elem_id="preset-pick")
            page.preset_load = gr.Button("Load", size="sm", elem_id="preset-load", interactive=False)
        with gr.Row():
            page.preset_rename = gr.Button("Rename to Name", size="sm", elem_id="preset-rename", interactive=False)
            page.preset_delete = gr.Button("Delete", size="sm", elem_id="preset-delete", interactive=False)
        with gr.Row():
            page.preset_export = gr.DownloadButton("Export presets", size="sm", elem_id="preset-export",
                                                   interactive=False)
            page.preset_import = gr.UploadButton("Import presets", file_types=[".json"], size="sm", type="binary",
                                                 elem_id="preset-import")


def _sweep(page: Page) -> None:
    with gr.Accordion("Sweep", open=False, elem_id="sweep-panel"):
        with gr.Row():
            page.sweep_x = components.Dropdown(AXIS_CHOICES, value=DEFAULT_X, label="Vary (X)", elem_id="sweep-x")
            page.sweep_x_values = gr.Textbox(value=DEFAULT_X_VALUES, label="X values", elem_id="sweep-x-values")
        with gr.Row():
            page.sweep_y = components.Dropdown([("nothing", "")] + AXIS_CHOICES, value="", label="and (Y)",
                                               elem_id="sweep-y")
            page.sweep_y_values = gr.Textbox(value="", label="Y values", placeholder="1, 2", elem_id="sweep-y-values")
        page.sweep_cost = gr.Markdown(sweep_cost(DEFAULT_X, DEFAULT_X_VALUES, "", ""), elem_id="sweep-cost")
        page.sweep_button = gr.Button("Run sweep", variant="primary", elem_id="sweep-button")
        page.sweep_edited = gr.State(False)


def _results(page: Page) -> None:
    page.status = gr.Markdown("Ready.", elem_id="status")
    page.gallery = gr.Gallery(label="Results", columns=2, height=560, format="webp", elem_id="results",
                              buttons=["download", "fullscreen"], interactive=False, object_fit="contain")
    with gr.Row():
        # Enabled once a run has a finished result (ui/wiring.py wire_results). At 120 px the four
        # share one line beside the form and two lines on a phone (Gradio's 160 px: two and four).
        tool: dict[str, Any] = {"size": "sm", "interactive": False, "min_width": TOOL_WIDTH}
        page.use_input = gr.Button("Use as input", elem_id="use-as-input", **tool)
        page.add_reference = gr.Button("Add as reference", elem_id="add-as-reference", **tool)
        page.download_png = gr.DownloadButton("Selected as PNG", elem_id="download-png", **tool)
        page.download_zip = gr.DownloadButton("All as zip", elem_id="download-zip", **tool)
    # A Textbox: Gradio's Number shows 0 for "none", and there is no seed before a run. The `edit` API
    # returns it as a number through the hidden `api_seed` (not in the row: its width would count there).
    page.api_seed = gr.Number(visible=False, precision=0)
    with gr.Row():
        page.seed_used = gr.Textbox(label="Seed used", interactive=False, max_lines=1, elem_id="seed-used",
                                    buttons=["copy"])  # a designer copies it into a note, a ticket
        page.reuse_seed = gr.Button("Reuse this seed", size="sm", elem_id="reuse-seed", interactive=False,
                                    min_width=TOOL_WIDTH)  # beside the seed on a phone too
    page.details = gr.Markdown(elem_id="details")
    # The finished (or restored) run as code: Gradio's Code has its own copy button (ui/snippets.py).
    with gr.Accordion("Use this run from code", open=False, elem_id="run-code"):
        page.code_client = gr.Code(language="python", label="This app, with gradio_client", interactive=False,
                                   elem_id="code-client")
        page.code_fal = gr.Code(language="python", label="fal directly, with fal_client", interactive=False,
                                elem_id="code-fal")
        page.code_recipe = gr.Code(language="json", label="The recipe", interactive=False, elem_id="code-recipe")


def _compare(page: Page) -> None:
    with gr.Accordion("Compare", open=True, elem_id="compare-panel"):
        # Its label is not shown, but a screen reader reads it (without one it said "Radio").
        page.compare_mode = gr.Radio(
            [("Before / after (image 1 vs the selected result)", "before"), ("A / B", "ab")],
            value="before", label="What to compare", show_label=False, elem_id="compare-mode",
        )
        with gr.Row(visible=False) as page.ab_row:
            page.pick_a = gr.Dropdown(label="A", choices=[], elem_id="compare-a")
            page.pick_b = gr.Dropdown(label="B", choices=[], elem_id="compare-b")
        page.compare = gr.ImageSlider(label="Compare", type="filepath", format="png", elem_id="compare")
    with gr.Accordion("Sweep results", open=False, elem_id="sweep-results") as page.sweep_results:
        page.sweep_gallery = gr.Gallery(label="Sweep cells", columns=4, height=320, elem_id="sweep-cells",
                                        interactive=False, fit_columns=False, object_fit="contain")
        # Enabled once a finished cell is picked (ui/sweep_cells.py pick_cell).
        with gr.Row():
            page.sweep_use_input = gr.Button("Use this cell as input", size="sm", elem_id="sweep-use-input",
                                             interactive=False)
            page.sweep_restore = gr.Button("Restore this cell's settings", size="sm", elem_id="sweep-restore",
                                           interactive=False)
        page.sweep_grid = gr.Image(label="Sweep grid", type="filepath", format="png", interactive=False,
                                   elem_id="sweep-grid", buttons=["download", "fullscreen"])
        page.sweep_zip = gr.DownloadButton("Sweep as zip", size="sm", elem_id="sweep-zip", interactive=False)
        page.sweep_state, page.sweep_picked = gr.State(None), gr.State(None)


def _history(page: Page) -> None:
    with gr.Accordion("History", open=True, elem_id="history-panel"):
        page.history_gallery = gr.Gallery(label="Past runs (kept in this browser)", columns=4, height=260,
                                          elem_id="history", interactive=False, allow_preview=False,
                                          fit_columns=False, object_fit="cover")
        with gr.Row():
            # Enabled once a run is picked (ui/history.py pick_run).
            page.history_restore = gr.Button("Restore this run", size="sm", elem_id="history-restore",
                                             interactive=False)
            page.history_star = gr.Button("★ Star / unstar", size="sm", elem_id="history-star", interactive=False)
            page.history_compare = gr.Button("Compare with the selected result", size="sm",
                                             elem_id="history-compare", interactive=False)
            page.history_undo = gr.Button("Undo clear", size="sm", elem_id="history-undo", visible=False)
            page.history_timer = gr.Timer(1, active=False)
            # Enabled while History has a run (ui/history.py clear_button).
            page.history_clear = gr.Button(CLEAR_LABEL, size="sm", variant="stop",
                                           elem_id="history-clear", interactive=False)
    with gr.Accordion("Log", open=False, elem_id="log-panel"):
        page.logs = gr.Textbox(label="Log lines", lines=8, max_lines=20, interactive=False, elem_id="logs")


def key_help(setup: PageSetup) -> str:
    if setup.needs_visitor_key:
        return NO_KEY_HELP  # a visitor's text: the operator's setup is in the README, not here
    return (LOGIN_HELP if setup.require_login else "") + OWN_KEY_HELP


def references_hint(max_references: int) -> str:
    return (
        f"Up to {max_references} images, sent in this order; big photos are shrunk to ~1 megapixel."
    )
