"""The page: arranges components and maps events to handlers.

Ranges, defaults and help texts come from the request model's Fields, so the page
and the validation can never disagree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from backend.base import Backend
from backend.errors import InvalidInput
from backend.outputs import set_starred
from backend.recipes import read_recipe
from backend.request import EditRequest, ImageSize, field_limits
from backend.settings import MEMORY_MODES
from backend.sweep import SWEEPABLE
from ui import api_docs, handlers
from ui import history as history_lib
from ui import components
from ui.components import ReferenceImage
from ui.examples import project_examples
from ui.lora_editor import lora_editor

CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "style.css"
SHORTCUTS_JS = """
<script>
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    const run = document.querySelector("#run-button");
    if (run) { event.preventDefault(); run.click(); }
  } else if (event.key === "Escape") {
    const stop = document.querySelector("#stop-button");
    if (stop && stop.offsetParent !== null) { stop.click(); }
  }
});
// Names a screen reader can tell apart, kept as Gradio re-renders: "Remove LoRA 2" for a "✕",
// "LoRA 2 scale" and "LoRA 2 on" for a row's "scale" and "on", "Upload image 2" for a slot.
const nameControls = () => {
  const named = [
    ["button[id^='lora-remove-']", "lora-remove-", (n) => "Remove LoRA " + n, ""],
    ["[id^='lora-scale-']", "lora-scale-", (n) => "LoRA " + n + " scale", "input"],
    ["[id^='lora-on-']", "lora-on-", (n) => "LoRA " + n + " on", "input"],
    // Gradio names every empty image's upload area alike; say which slot it fills.
    ["[id^='reference-']", "reference-", (n) => "Upload image " + n,
     "[aria-label='Drop an image file here to upload']"],
  ];
  for (const [selector, prefix, label, inner] of named) {
    for (const owner of document.querySelectorAll(selector)) {
      const name = label(owner.id.slice(prefix.length));
      for (const target of inner ? owner.querySelectorAll(inner) : [owner]) {
        if (target.getAttribute("aria-label") !== name) {
          target.setAttribute("aria-label", name);
          if (!inner) target.title = name;
        }
      }
    }
  }
};
new MutationObserver(nameControls).observe(
  document, {childList: true, subtree: true, attributes: true, attributeFilter: ["id", "aria-label"]},
);
</script>
"""
NO_KEY_HELP = (
    "This server has no fal key. Paste **your own fal API key** to run (create one at "
    "[fal.ai/dashboard/keys](https://fal.ai/dashboard/keys)). It is used only for your runs: "
    "never stored, logged or sent back to this page."
)
NO_GPU_HELP = (
    "\n\nThis server has no GPU either, so only fal is offered. To run FLUX.2 on your own NVIDIA GPU "
    "instead, start the app there with `pip install -r requirements-local.txt` "
    "(see \"Local GPU\" in the README)."
)


def _field(name: str, model: type = EditRequest) -> Any:
    return model.model_fields[name]


def _slider(name: str, step: float, model: type = EditRequest, **kwargs: Any) -> gr.Slider:
    info = _field(name, model)
    limits = field_limits(name, model)
    default = kwargs.pop("value", info.default)
    return components.Slider(
        minimum=limits["minimum"], maximum=limits["maximum"], step=step, value=default,
        label=info.title, info=info.description, **kwargs,
    )


BACKEND_LABELS = {"fal": "fal (hosted)", "local": "this machine's GPU (local)"}
FAL_ONLY = "fal only: not used by the local backend"


def build_ui(
    backends: dict[str, Backend], default_backend: str, outputs_root: Path, endpoint: str,
    needs_visitor_key: bool, model: str = "", memory: str = "gpu", outputs_max_bytes: int | None = None,
) -> gr.Blocks:
    # Previews and results are copied into Gradio's cache on every update: clean it hourly
    # of files older than a day, so a studio used all day does not fill the disk.
    with gr.Blocks(title="FLUX.2 LoRA Edit Studio", delete_cache=(3600, 86400)) as demo:
        gr.Markdown("# FLUX.2 LoRA Edit Studio\nEdit images with FLUX.2 [dev] and your LoRAs.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=360):
                backend_choice = components.Radio(
                    [(BACKEND_LABELS[name], name) for name in backends], value=default_backend,
                    label="Backend", visible=len(backends) > 1, elem_id="backend",
                )
                local_first = default_backend == "local"
                with gr.Group():
                    slots, move_buttons = [], []
                    for row_start, visible in ((1, True), (4, local_first)):
                        with gr.Row(visible=visible) as slot_row:
                            slots += [
                                ReferenceImage(
                                    label=f"image {i}", type="filepath", image_mode=None,
                                    sources=["upload", "clipboard"], height=180, min_width=120,
                                    elem_id=f"reference-{i}", buttons=["fullscreen"],
                                )
                                for i in range(row_start, row_start + 3)
                            ]
                        with gr.Row(visible=visible) as swap_row:
                            # row 1: swap 1-2, 2-3; row 2: swap 3-4, 4-5, 5-6
                            for i in range(1, 3) if row_start == 1 else range(3, 6):
                                move_buttons.append(gr.Button(
                                    f"⇄ swap {i} and {i + 1}", size="sm", variant="secondary",
                                    elem_id=f"swap-{i}",
                                ))
                    local_slot_rows = [slot_row, swap_row]
                references_hint = gr.Markdown(_references_hint(backends[default_backend]), elem_classes=["hint"])
                prompt = gr.Textbox(
                    label=_field("prompt").title, info=_field("prompt").description, lines=3,
                    placeholder="make this donut realistic", elem_id="prompt",
                )
                with gr.Row():
                    run_button = gr.Button("Run", variant="primary", elem_id="run-button", scale=3)
                    stop_button = gr.Button("Stop", variant="stop", elem_id="stop-button", scale=1)
                gr.Markdown("Ctrl/Cmd+Enter runs, Escape stops.", elem_classes=["hint"])
                examples = project_examples(prompt, slots[:3])

                with gr.Group(visible=needs_visitor_key and default_backend == "fal") as key_group:
                    fal_key = gr.Textbox(
                        label="Your fal API key", type="password", placeholder="fal key (id:secret)",
                        elem_id="fal-key",
                    )
                    gr.Markdown(NO_KEY_HELP + ("" if "local" in backends else NO_GPU_HELP), elem_classes=["hint"])
                with gr.Accordion("Local model", open=False, visible=local_first) as local_panel:
                    model_box = gr.Textbox(
                        value=model, label="Model", elem_id="local-model",
                        info="A Hugging Face repo id (black-forest-labs/FLUX.2-dev, diffusers/FLUX.2-dev-bnb-4bit) "
                             "or a local folder. Loaded at the next run.",
                    )
                    memory_box = components.Dropdown(
                        [(text, name) for name, text in MEMORY_MODES.items()], value=memory,
                        label="Memory mode", elem_id="local-memory",
                    )

                lora_rows, lora_version = lora_editor()

                guidance = _slider("guidance_scale", 0.1)
                steps = _slider("num_inference_steps", 1)
                size = components.Dropdown(
                    choices=handlers.SIZE_CHOICES, value=handlers.MATCH_FIRST, label=_field("image_size").title,
                    info="Match the first image, a preset, or a custom width and height.",
                )
                with gr.Row(visible=False) as custom_size:
                    width = _slider("width", 16, ImageSize, value=1024)
                    height = _slider("height", 16, ImageSize, value=1024)
                with gr.Row():
                    seed = components.Number(
                        label=_field("seed").title, value=0, precision=0, minimum=0,
                        maximum=field_limits("seed")["maximum"], info=_field("seed").description,
                    )
                    randomize_seed = gr.Checkbox(label="Random seed", value=True)
                num_images = _slider("num_images", 1)
                with gr.Accordion("Advanced", open=False):
                    acceleration = components.Radio(
                        ["none", "regular", "high"], value=_field("acceleration").default,
                        label=_field("acceleration").title, info=_fal_only_info("acceleration", local_first), interactive=not local_first,
                    )
                    expansion = gr.Checkbox(
                        value=_field("enable_prompt_expansion").default,
                        label=_field("enable_prompt_expansion").title,
                        info=_fal_only_info("enable_prompt_expansion", local_first), interactive=not local_first,
                    )
                    safety = gr.Checkbox(
                        value=_field("enable_safety_checker").default,
                        label=_field("enable_safety_checker").title,
                        info=_fal_only_info("enable_safety_checker", local_first), interactive=not local_first,
                    )
                    output_format = components.Radio(
                        ["png", "jpeg", "webp"], value=_field("output_format").default,
                        label=_field("output_format").title, info=_field("output_format").description,
                    )
                    sync_mode = gr.Checkbox(
                        value=_field("sync_mode").default, label=_field("sync_mode").title,
                        info=_fal_only_info("sync_mode", local_first), interactive=not local_first,
                    )

                with gr.Accordion("Presets", open=False, elem_id="presets-panel"):
                    gr.Markdown("A preset keeps the LoRA stack and the settings (not the instruction or images).",
                                elem_classes=["hint"])
                    with gr.Row():
                        preset_name = gr.Textbox(label="Name", placeholder="watercolor 0.8", elem_id="preset-name")
                        preset_save = gr.Button("Save", size="sm", elem_id="preset-save")
                    with gr.Row():
                        preset_pick = gr.Dropdown(label="Preset", choices=[], elem_id="preset-pick")
                        preset_load = gr.Button("Load", size="sm", elem_id="preset-load")
                    with gr.Row():
                        preset_export = gr.DownloadButton("Export presets", size="sm", elem_id="preset-export")
                        preset_import = gr.UploadButton("Import presets", file_types=[".json"], size="sm",
                                                        type="binary", elem_id="preset-import")
                with gr.Accordion("Sweep", open=False, elem_id="sweep-panel"):
                    axis_choices = [(label, key) for key, (label, _kind) in SWEEPABLE.items()]
                    with gr.Row():
                        sweep_x = components.Dropdown(axis_choices, value="lora1_scale", label="Vary (X)", elem_id="sweep-x")
                        sweep_x_values = gr.Textbox(value="0.4, 0.7, 1.0, 1.3", label="X values",
                                                    elem_id="sweep-x-values")
                    with gr.Row():
                        sweep_y = components.Dropdown([("nothing", "")] + axis_choices, value="", label="and (Y)",
                                              elem_id="sweep-y")
                        sweep_y_values = gr.Textbox(value="", label="Y values", placeholder="1, 2",
                                                    elem_id="sweep-y-values")
                    sweep_cost = gr.Markdown(handlers.sweep_cost("lora1_scale", "0.4, 0.7, 1.0, 1.3", "", ""),
                                             elem_id="sweep-cost")
                    sweep_button = gr.Button("Run sweep", variant="primary", elem_id="sweep-button")
                with gr.Accordion("Restore settings from a PNG made here", open=False):
                    recipe_file = gr.File(
                        label="Drop a PNG from this studio", file_types=[".png"], type="filepath",
                        elem_id="recipe-drop",
                    )
            fal_only = [acceleration, expansion, safety, sync_mode]
            with gr.Column(scale=6, min_width=360):
                status = gr.Markdown("Ready.", elem_id="status")
                gallery = gr.Gallery(
                    label="Results", columns=2, height=560, format="webp", elem_id="results",
                    buttons=["download", "fullscreen"], interactive=False,
                )
                with gr.Row():
                    use_input = gr.Button("Use as input", size="sm", elem_id="use-as-input")
                    add_reference = gr.Button("Add as reference", size="sm", elem_id="add-as-reference")
                    download_png = gr.DownloadButton("Selected as PNG", size="sm", elem_id="download-png",
                                                     interactive=False)
                    download_zip = gr.DownloadButton("All as zip", size="sm", elem_id="download-zip",
                                                     interactive=False)
                with gr.Row():
                    seed_used = gr.Number(label="Seed used", interactive=False, precision=0, elem_id="seed-used")
                    reuse_seed = gr.Button("Reuse this seed", size="sm", elem_id="reuse-seed")
                details = gr.Markdown(elem_id="details")
                with gr.Accordion("Compare", open=True):
                    compare_mode = gr.Radio(
                        [("Before / after (image 1 vs the selected result)", "before"), ("A / B", "ab")],
                        value="before", show_label=False, elem_id="compare-mode",
                    )
                    with gr.Row(visible=False) as ab_row:
                        pick_a = gr.Dropdown(label="A", choices=[], elem_id="compare-a")
                        pick_b = gr.Dropdown(label="B", choices=[], elem_id="compare-b")
                    compare = gr.ImageSlider(label="Compare", type="filepath", format="png", elem_id="compare")
                with gr.Accordion("Sweep results", open=False, elem_id="sweep-results") as sweep_results:
                    sweep_gallery = gr.Gallery(label="Sweep cells", columns=4, height=320, elem_id="sweep-cells",
                                               interactive=False, fit_columns=False)
                    sweep_grid = gr.Image(label="Sweep grid", type="filepath", format="png", interactive=False,
                                          elem_id="sweep-grid", buttons=["download", "fullscreen"])
                    sweep_zip = gr.DownloadButton("Sweep as zip", size="sm", elem_id="sweep-zip")
                with gr.Accordion("History", open=True, elem_id="history-panel"):
                    history_gallery = gr.Gallery(label="Past runs (kept in this browser)", columns=6, height=220,
                                                 elem_id="history", interactive=False, allow_preview=False,
                                                 fit_columns=False, object_fit="cover")
                    with gr.Row():
                        history_restore = gr.Button("Restore this run", size="sm", elem_id="history-restore")
                        history_star = gr.Button("★ Star / unstar", size="sm", elem_id="history-star")
                        history_clear = gr.Button("Clear (keeps starred)", size="sm", variant="stop",
                                                  elem_id="history-clear")
                with gr.Accordion("Log", open=False):
                    logs = gr.Textbox(label="Log lines", lines=8, max_lines=20, interactive=False, elem_id="logs")
                selected = gr.State(0)  # the result the tools act on (the gallery's selection)
                history_selected = gr.State(None)
                last_run = gr.State(None)  # the saved run, for the history
                # Recipes and thumbnails only, in localStorage: never a key.
                history = gr.BrowserState([], storage_key="flux2-studio-history")
                presets = gr.BrowserState({}, storage_key="flux2-studio-presets")

        # -- events -------------------------------------------------------------------
        private = dict(api_visibility="private")
        private_fast = dict(api_visibility="private", queue=False)
        # Keep the images packed to the left, so "image N" is the N-th image sent.
        for slot in slots:
            for trigger in (slot.upload, slot.clear):
                trigger(handlers.pack_images, slots, slots, api_visibility="private", queue=False)
        for index, button in enumerate(move_buttons):
            button.click(lambda *v, i=index: handlers.swap_images(v, i), slots, slots,
                         api_visibility="private", queue=False)
        def switch_backend(name: str):
            local = name == "local"
            return (
                *[gr.update(visible=local) for _ in local_slot_rows],
                gr.update(visible=local),
                gr.update(visible=needs_visitor_key and not local),
                _references_hint(backends[name]),
                *[gr.update(interactive=not local, info=_fal_only_info(f, local))
                  for f in ("acceleration", "enable_prompt_expansion", "enable_safety_checker", "sync_mode")],
            )

        backend_choice.change(
            switch_backend, backend_choice,
            [*local_slot_rows, local_panel, key_group, references_hint, *fal_only],
            api_visibility="private", queue=False,
        )
        size.change(lambda s: gr.update(visible=s == handlers.CUSTOM), size, custom_size,
                    api_visibility="private", queue=False)
        reuse_seed.click(lambda s: (s, False) if s is not None else (gr.skip(), gr.skip()),
                         seed_used, [seed, randomize_seed], api_visibility="private", queue=False)

        def edit(
            prompt: str, image_1: str | None, image_2: str | None, image_3: str | None,
            loras: list | None, guidance_scale: float, num_inference_steps: float, size: str,
            width: float, height: float, seed: float | None, randomize_seed: bool, num_images: float,
            acceleration: str, enable_prompt_expansion: bool, enable_safety_checker: bool,
            output_format: str, sync_mode: bool, fal_key: str | None, backend: str = default_backend,
            image_4: str | None = None, image_5: str | None = None, image_6: str | None = None,
            model: str = model, memory: str = memory,
        ):
            # The API description (docs page, MCP tool) is set from ui/api_docs.py below.
            chosen, request, source = prepare(
                prompt, image_1, image_2, image_3, loras, guidance_scale, num_inference_steps, size, width,
                height, seed, randomize_seed, num_images, acceleration, enable_prompt_expansion,
                enable_safety_checker, output_format, sync_mode, fal_key, backend, image_4, image_5, image_6,
                model, memory,
            )
            yield from handlers.run_edit(chosen, outputs_root, source, request, fal_key, outputs_max_bytes)

        def prepare(
            prompt, image_1, image_2, image_3, loras, guidance_scale, num_inference_steps, size, width, height,
            seed, randomize_seed, num_images, acceleration, enable_prompt_expansion, enable_safety_checker,
            output_format, sync_mode, fal_key, backend=default_backend, image_4=None, image_5=None, image_6=None,
            model=model, memory=memory,
        ):
            """The backend, the validated request, and what the recipe records as the model."""
            try:
                chosen = handlers.pick_backend(backends, backend, model, memory)
                request = handlers.request_from_form(
                    prompt, [image_1, image_2, image_3, image_4, image_5, image_6], loras, guidance_scale,
                    num_inference_steps, size, width, height, seed, randomize_seed, num_images, acceleration,
                    enable_prompt_expansion, enable_safety_checker, output_format, sync_mode,
                )
            except InvalidInput as error:
                raise gr.Error(handlers.format_problems(error.problems), title="Please check the form") from None
            return chosen, request, (model if chosen.name == "local" else endpoint)

        edit.__doc__ = api_docs.EDIT_DOC  # Gradio reads it when the event is made

        inputs = [
            prompt, *slots[:3], lora_rows, guidance, steps, size, width, height, seed, randomize_seed, num_images,
            acceleration, expansion, safety, output_format, sync_mode, fal_key, backend_choice, *slots[3:],
            model_box, memory_box,
        ]
        outputs = [gallery, status, logs, details, seed_used, last_run]
        run_event = gr.on(
            [run_button.click, prompt.submit], edit, inputs, outputs, api_name="edit",
            show_progress="minimal", show_progress_on=[gallery],
            trigger_mode="once",
        )

        # The same parameters as `edit`, spelled out: Gradio documents the API from the signature.
        def sweep(
            prompt: str, image_1: str | None, image_2: str | None, image_3: str | None,
            loras: list | None, guidance_scale: float, num_inference_steps: float, size: str,
            width: float, height: float, seed: float | None, randomize_seed: bool, num_images: float,
            acceleration: str, enable_prompt_expansion: bool, enable_safety_checker: bool,
            output_format: str, sync_mode: bool, fal_key: str | None, backend: str = default_backend,
            image_4: str | None = None, image_5: str | None = None, image_6: str | None = None,
            model: str = model, memory: str = memory, x_axis: str = "lora1_scale",
            x_values: str = "0.4, 0.7, 1.0, 1.3", y_axis: str = "", y_values: str = "",
        ):
            # The API description is set from ui/api_docs.py below.
            chosen, request, source = prepare(
                prompt, image_1, image_2, image_3, loras, guidance_scale, num_inference_steps, size, width,
                height, seed, randomize_seed, num_images, acceleration, enable_prompt_expansion,
                enable_safety_checker, output_format, sync_mode, fal_key, backend, image_4, image_5, image_6,
                model, memory,
            )
            yield from handlers.run_sweep_view(
                chosen, outputs_root, source, request, fal_key, x_axis, x_values, y_axis or None, y_values,
                outputs_max_bytes,
            )

        sweep.__doc__ = api_docs.SWEEP_DOC

        sweep_event = sweep_button.click(
            lambda: gr.update(open=True), None, sweep_results, **private_fast,
        ).then(
            sweep, [*inputs, sweep_x, sweep_x_values, sweep_y, sweep_y_values],
            [sweep_gallery, status, sweep_grid, sweep_zip], api_name="sweep",
        )
        for control in (sweep_x, sweep_x_values, sweep_y, sweep_y_values):
            control.change(handlers.sweep_cost, [sweep_x, sweep_x_values, sweep_y, sweep_y_values], sweep_cost,
                           **private_fast)
        # An example fills the form and runs at once (one click).
        example_event = examples.load_input_event.then(edit, inputs, outputs, **private)
        # The status is set after the cancel, so a last update of the stopped run cannot
        # overwrite it.
        stop_button.click(
            None, None, None, cancels=[run_event, sweep_event, example_event], api_visibility="private",
            queue=False,
        ).then(lambda: "⏹ Stopped.", None, status, **private_fast)

        # -- results tools --------------------------------------------------------------
        downloads = Path(tempfile.mkdtemp(prefix="studio-downloads-"))

        def on_select(event: gr.SelectData) -> int:
            return event.index

        def refresh_png(gallery_value, index):
            paths = handlers.result_paths(gallery_value)
            if not paths:
                return gr.update(value=None, interactive=False)
            return gr.update(value=handlers.as_png(handlers.selected_result(gallery_value, index), downloads),
                             interactive=True)

        def after_run(gallery_value, reference):
            paths = handlers.result_paths(gallery_value)
            choices = [(f"image {i}", i - 1) for i in range(1, len(paths) + 1)]
            folder = handlers.fresh_folder(downloads)
            zipped = handlers.zip_results(paths, folder)
            return (
                0, gr.update(choices=choices, value=0), gr.update(choices=choices, value=min(1, len(paths) - 1)),
                gr.update(value=zipped, interactive=bool(zipped)),
                handlers.compare_pair(gallery_value, 0, reference, "before", 0, 0),
            )

        compare_inputs = [gallery, selected, slots[0], compare_mode, pick_a, pick_b]
        run_event.then(after_run, [gallery, slots[0]], [selected, pick_a, pick_b, download_zip, compare], **private
                       ).then(refresh_png, [gallery, selected], download_png, **private)
        gallery.select(on_select, None, selected, **private).then(
            handlers.compare_pair, compare_inputs, compare, **private).then(
            refresh_png, [gallery, selected], download_png, **private)
        compare_mode.change(lambda m: gr.update(visible=m == "ab"), compare_mode, ab_row, **private)
        for trigger in (compare_mode.change, pick_a.change, pick_b.change):
            trigger(handlers.compare_pair, compare_inputs, compare, **private)
        use_input.click(lambda g, i: handlers.use_as_input(g, i, len(slots)), [gallery, selected], slots, **private)
        add_reference.click(
            lambda g, i, name, *current: handlers.add_as_reference(g, i, list(current), backends[name].max_references),
            [gallery, selected, backend_choice, *slots], slots, **private,
        )

        # -- history ----------------------------------------------------------------------
        def remember(run, past):
            past = history_lib.add_entry(past, run)
            return past, history_lib.gallery_items(past)

        run_event.then(remember, [last_run, history], [history, history_gallery], **private)
        demo.load(history_lib.gallery_items, history, history_gallery, **private)
        history_gallery.select(on_select, None, history_selected, **private_fast)

        def star(past, index):
            past = history_lib.toggle_star(past, index)
            if past and index is not None and 0 <= index < len(past):
                # The server keeps a starred run's files even when the outputs folder is full.
                entry = past[index]
                set_starred(outputs_root, next(iter(entry.get("images") or []), ""), bool(entry.get("starred")))
            return past, history_lib.gallery_items(past)

        history_star.click(star, [history, history_selected], [history, history_gallery], **private_fast)
        history_clear.click(lambda past: (lambda kept: (kept, history_lib.gallery_items(kept)))(
            history_lib.clear(past)), history, [history, history_gallery], **private_fast)

        restored = {
            "prompt": prompt, "loras": lora_rows, "guidance_scale": guidance, "num_inference_steps": steps,
            "size": size, "width": width, "height": height, "seed": seed, "randomize_seed": randomize_seed,
            "num_images": num_images, "acceleration": acceleration, "enable_prompt_expansion": expansion,
            "enable_safety_checker": safety, "output_format": output_format, "sync_mode": sync_mode,
            "backend": backend_choice,
        }

        def restore(path: str | None, version: float):
            """Restore every setting of a PNG made by this studio (its recipe chunk)."""
            recipe = read_recipe(Path(path).read_bytes()) if path else None
            if recipe is None:
                raise gr.Error("This PNG carries no recipe from this studio.", title="Nothing to restore")
            values = handlers.form_from_recipe(recipe, list(backends))
            return (*[values[name] for name in restored], version + 1,
                    f"♻️ Restored the settings of a {recipe.get('backend')} run (seed {recipe.get('seed')}).")

        recipe_file.upload(
            restore, [recipe_file, lora_version], [*restored.values(), lora_version, status],
            api_name="restore", api_visibility="undocumented",
        )

        def restore_from_history(past, index, version):
            """Every input of a past run: its settings, seed, backend and reference images."""
            if not past or index is None or index >= len(past):
                raise gr.Error("Pick a run in the history first.", title="Nothing to restore")
            entry = past[index]
            values = handlers.form_from_recipe(entry["recipe"], list(backends))
            references = history_lib.existing(entry.get("references", []), outputs_root)
            slot_values = (references + [None] * len(slots))[: len(slots)]
            results = [p for p in history_lib.existing(entry.get("images", []), outputs_root) if p]
            return (*[values[name] for name in restored], version + 1, *slot_values, results,
                    f"♻️ Restored the run of {entry['created']}.")

        history_restore.click(
            restore_from_history, [history, history_selected, lora_version],
            [*restored.values(), lora_version, *slots, gallery, status], **private_fast,
        )

        # -- presets ------------------------------------------------------------------------
        preset_inputs = [lora_rows, guidance, steps, size, width, height, acceleration, expansion, safety,
                         output_format, sync_mode]

        def save_preset(all_presets, name, *values):
            try:
                all_presets = history_lib.save_preset(all_presets, name, dict(zip(history_lib.PRESET_FIELDS, values)))
            except ValueError as error:
                raise gr.Error(str(error), title="Preset") from None
            return all_presets, gr.update(choices=list(all_presets), value=name.strip())

        def load_preset(all_presets, name, version):
            if not all_presets or name not in all_presets:
                raise gr.Error("Pick a saved preset first.", title="Preset")
            values = all_presets[name]
            return (*[values.get(f, gr.skip()) for f in history_lib.PRESET_FIELDS], version + 1)

        def import_presets(all_presets, data):
            try:
                all_presets = history_lib.import_presets(all_presets, data)
            except ValueError as error:
                raise gr.Error(str(error), title="Preset") from None
            return all_presets, gr.update(choices=list(all_presets))

        def export_file(all_presets):
            """The export button always holds the current presets as a JSON file."""
            return history_lib.export_presets(all_presets, handlers.fresh_folder(downloads))

        preset_save.click(save_preset, [presets, preset_name, *preset_inputs], [presets, preset_pick], **private_fast
                          ).then(export_file, presets, preset_export, **private_fast)
        preset_load.click(load_preset, [presets, preset_pick, lora_version], [*preset_inputs, lora_version],
                          **private_fast)
        preset_import.upload(import_presets, [presets, preset_import], [presets, preset_pick], **private_fast
                             ).then(export_file, presets, preset_export, **private_fast)
        demo.load(lambda p: (gr.update(choices=list(p or {})), export_file(p)), presets,
                  [preset_pick, preset_export], **private)
    return demo


def _fal_only_info(name: str, local: bool) -> str:
    return FAL_ONLY if local else _field(name).description


def _references_hint(backend: Backend) -> str:
    return (
        f"Up to {backend.max_references} reference images, sent in this order. Upload, paste or drop "
        "them; large photos are shrunk to the model's ~1 megapixel."
    )
