"""A finished run's details (ui/details.py), the LoRA rows not sent (ui/run.py plan_run), and the
downloads' names (ui/results.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from PIL import Image

from backend.events import Result, ResultImage
from backend.fal import FalOptions
from backend.local.options import LocalOptions
from backend.request import build_request
from backend.spending import estimate, usd
from ui.details import describe_run, fal_cost_micros, images_on_disk, run_extras, shown_images, skipped_lora_rows
from ui.results import as_png, download_name, slug, zip_results

PRICE = 0.021


def finished(backend: str = "fal", seeds=(42,), **request):
    edit = build_request(**{
        "prompt": "Make this donut *realistic*", "image_urls": ["donut.png"],
        "loras": [{"path": "owner/watercolor", "scale": 0.8}, {"path": "https://example.com/x.safetensors",
                                                               "scale": 1.3}],
        "guidance_scale": 4.5, "num_inference_steps": 12, "image_size": "square_hd", "num_images": len(seeds),
        **request,
    })
    images = tuple(ResultImage(data=b"", content_type="image/jpeg", width=1024, height=1024) for _ in seeds)
    result = Result(images=images, seed=seeds[0], seeds=tuple(seeds), timings={"inference": 3.25},
                    prompt="Make this donut realistic", notes=("LoRA 1 trigger words: sks",))
    options = FalOptions() if backend == "fal" else LocalOptions(model="owner/model")
    recipe = {"request": edit.model_dump(mode="json"), "options": options.model_dump(mode="json"),
              "seed": result.seed, "seeds": list(result.seeds), "prompt_used": result.prompt,
              "timings": result.timings, "nsfw": [False] * len(seeds), "backend": backend,
              "endpoint": "fal-ai/flux-2/lora/edit" if backend == "fal" else "owner/model"}
    cost = fal_cost_micros(edit, backend, PRICE)
    recipe |= run_extras(12.34, [*result.notes, "LoRA row 2 is switched on but has no path: not sent"], cost)
    return edit, result, recipe


def test_the_details_carry_the_whole_recipe_and_the_cost_on_fal():
    edit, result, recipe = finished()
    details = describe_run(recipe, shown_images(result), Path("2025-01-01/run"))
    assert "**Instruction:** Make this donut \\*realistic\\*" in details  # text, not emphasis
    assert "**LoRAs:** `owner/watercolor` × `0.8`, `https://example.com/x.safetensors` × `1.3`" in details
    assert "**Guidance:** `4.5` · **Steps:** `12`" in details
    assert "**Size:** asked `square_hd` (1024×1024), made 1024×1024" in details
    assert "**Seed:** `42`" in details
    assert "**Backend:** fal · **Endpoint:** `fal-ai/flux-2/lora/edit`" in details
    assert "**Images:** 1 × 1024×1024 (jpg)" in details and "**Time taken:** 12.3 s" in details
    # The spending policy's own estimate: 1 MP out + 1 MP reference at $0.021.
    assert f"**Estimated cost on fal:** {usd(estimate([edit], PRICE)[1])}" in details
    assert "**Estimated cost on fal:** $0.04" in details
    assert "**Timings:** inference 3.25 s" in details and "**Safety checker:** nothing flagged" in details
    assert "**Prompt used:** Make this donut realistic" in details
    assert "**Note:** LoRA 1 trigger words: sks" in details
    assert "**Note:** LoRA row 2 is switched on but has no path: not sent" in details
    assert "**Saved as:** `2025-01-01/run`" in details


def test_a_local_run_names_its_model_and_costs_nothing_on_fal():
    _, result, recipe = finished("local", seeds=(41, 42), loras=[], image_size={"width": 768, "height": 512})
    details = describe_run(recipe, shown_images(result), None)
    assert "**Backend:** local · **Model:** `owner/model`" in details
    assert "**LoRAs:** none" in details and "**Seeds:** `41`, `42`" in details
    assert "**Size:** asked 768×512, made 1024×1024" in details
    assert "cost" not in details and "**Safety checker:** none on this backend" in details


def test_a_restored_run_reads_its_sizes_from_the_saved_files(tmp_path):
    _, result, recipe = finished()
    path = tmp_path / "image-1.png"
    Image.new("RGB", (96, 64)).save(path)
    assert describe_run(recipe, images_on_disk([str(path)], [True]), None).count("made 96×64") == 1
    assert "**Safety checker:** flagged image 1" in describe_run(recipe, images_on_disk([str(path)], [True]), None)


def test_lora_rows_that_are_not_sent_are_named():
    rows = [{"path": "owner/a", "scale": 1, "enabled": True}, {"path": " ", "scale": 1, "enabled": True},
            {"path": "owner/off", "scale": 1, "enabled": False}, {"path": "", "scale": 1, "enabled": False}]
    assert skipped_lora_rows(rows) == ["LoRA row 2 is switched on but has no path: not sent",
                                       "LoRA row 3 is switched off: not sent"]


def test_download_names_say_the_instruction_the_seed_and_the_image():
    assert download_name("Make this donut realistic!", 42, 2, "png") == "make-this-donut-realistic_seed-42_2.png"
    assert download_name("Make this donut realistic!", 42, None, "zip") == "make-this-donut-realistic_seed-42.zip"
    assert slug("Crème brûlée, on a plate") == "creme-brulee-on-a-plate"
    assert slug("把它变成水彩画") == "edit" and slug("") == "edit" and slug(None) == "edit"
    long = slug("turn the whole scene into an oil painting in the style of the old dutch masters")
    assert len(long) <= 40 and long == "turn-the-whole-scene-into-an-oil"
    assert slug("../../etc/passwd\n") == "etc-passwd"  # nothing of a path survives
    assert download_name("x", None, 1, "png") == "x_1.png"


def test_the_png_and_the_zip_are_named_for_the_run(tmp_path):
    paths = []
    for index, fmt in ((1, "PNG"), (2, "JPEG")):
        path = tmp_path / f"image-{index}.{fmt.lower()}"
        Image.new("RGB", (32, 32)).save(path, format=fmt)
        paths.append(str(path))
    out = tmp_path / "out"
    out.mkdir()
    name = download_name("make it blue", 7, 2, "png")
    png = Path(as_png(paths[1], out, name))
    assert png.name == "make-it-blue_seed-7_2.png" and Image.open(png).format == "PNG"
    assert Path(as_png(paths[0], out, download_name("make it blue", 7, 1, "png"))).read_bytes() == \
        Path(paths[0]).read_bytes()  # a PNG is copied as it is (its recipe chunks too)
    # fal: every image of the run comes from its one seed.
    archive = Path(zip_results(paths, out, "make it blue", {"recipe": {"seed": 7, "seeds": []}}))
    assert archive.name == "make-it-blue_seed-7.zip"
    assert zipfile.ZipFile(archive).namelist() == ["make-it-blue_seed-7_1.png", "make-it-blue_seed-7_2.jpeg"]
    # Local: image 2 came from seed 8, and seed 8 alone makes it again: its name says so.
    archive = Path(zip_results(paths, out, "make it blue", {"recipe": {"seed": 7, "seeds": [7, 8]}}))
    assert archive.name == "make-it-blue_seed-7.zip"
    assert zipfile.ZipFile(archive).namelist() == ["make-it-blue_seed-7_1.png", "make-it-blue_seed-8_2.jpeg"]
    # A gallery sent back with one file listed a thousand times (to write a huge zip): each file
    # once, and no more than a run makes.
    many = [str(tmp_path / f"many-{n}.png") for n in range(6)]
    for path in many:
        Image.new("RGB", (8, 8)).save(path)
    archive = Path(zip_results([paths[0]] * 1000 + many, out, "make it blue", {"recipe": {"seed": 7}}))
    assert len(zipfile.ZipFile(archive).namelist()) == 4


def test_a_run_plan_keeps_the_lora_rows_it_does_not_send():
    from backend.fal import FalBackend
    from ui.run import plan_run

    rows = [{"path": "owner/a", "scale": 0.5, "enabled": True}, {"path": "", "scale": 1, "enabled": True}]
    fal = {"fal": FalBackend(server_key="server-key")}
    plan = plan_run({"prompt": "x", "image_1": "a.png", "loras": rows, "backend": "fal"}, fal)
    assert [lora.path for lora in plan.request.loras] == ["owner/a"]
    assert plan.skipped == ("LoRA row 2 is switched on but has no path: not sent",)
