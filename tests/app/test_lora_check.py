"""Through the launched app: each LoRA's header is read before anything is sent to fal, from an
https host (a local TLS server standing for a public one, reached through the app's guarded
downloader) and from the stand-in Hugging Face Hub. A LoRA made for another model, or whose
header cannot be read, is refused naming the model or the reason, and no fal job starts.
"""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError

from tests.helpers.api import run
from tests.helpers.app import launch_app, stop_app
from tests.helpers.lora_headers import lora_header_file
from tests.helpers.stand_ins.hub import session_hub
from tests.helpers.tls_site import Site

FILES = {
    "/dev.safetensors": lora_header_file("flux2-dev", "kohya", rank=32, metadata={"trigger_word": "inkwash"}),
    "/flux1.safetensors": lora_header_file("flux1", "kohya"),
    "/page.safetensors": b"<!DOCTYPE html><html><body>Log in to download</body></html>",
}
HUB = {
    "someone/klein-style": lora_header_file("klein-4b", "ai-toolkit"),
    "someone/sdxl-style": lora_header_file("sdxl", "kohya"),
    "someone/qwen-style": lora_header_file("qwen-image", "diffusers"),
    "someone/dev-style": lora_header_file("flux2-dev-diffusers", "fal"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    server = Site(tmp_path_factory.mktemp("lora-site"), name="loras.test")
    server.files = dict(FILES)
    yield server
    server.close()


@pytest.fixture(scope="module")
def checked_app(fake, site, tmp_path_factory):
    for repo, data in HUB.items():
        session_hub().add(repo, "style.safetensors", data)
    launched = launch_app(tmp_path_factory.mktemp("lora-check-app"), fake, **site.app_env())
    yield launched
    stop_app(launched)


@pytest.mark.parametrize("path, refusal", [
    ("https://loras.test/flux1.safetensors", "was made for FLUX.1, not FLUX.2 [dev]"),
    ("someone/klein-style", "was made for FLUX.2 [klein] 4B (3072 wide), not FLUX.2 [dev] (6144 wide)"),
    ("someone/sdxl-style", "was made for SDXL, not FLUX.2 [dev]"),
    ("someone/qwen-style", "was made for Qwen-Image, not FLUX.2 [dev]"),
    ("https://loras.test/page.safetensors", "its header could not be read: not a safetensors file"),
    ("https://127.0.0.1/x.safetensors", "only public addresses are fetched"),
])
def test_a_lora_that_does_not_fit_is_refused_before_anything_reaches_fal(checked_app, fake, images, path, refusal):
    loras = [{"path": "someone/dev-style", "scale": 1.0}, {"path": path, "scale": 0.8}]
    with pytest.raises(AppError) as raised:
        run(checked_app, images, loras=loras)
    assert f"LoRA 2 ({path}): {refusal}" in str(raised.value)
    assert fake.jobs == {} and fake.uploads == {}


def test_flux2_dev_loras_from_an_https_host_and_the_hub_reach_fal(checked_app, fake, images, site):
    loras = [{"path": "https://loras.test/dev.safetensors", "scale": 0.7},
             {"path": "someone/dev-style", "scale": 1.2}]
    _gallery, status, _logs, _details, _seed = run(checked_app, images, loras=loras)
    assert status.startswith("✅ Done")
    [job] = fake.jobs.values()
    assert job.input["loras"] == loras
    # The https host saw ranged reads of the header only, by its name (TLS and Host kept).
    reads = [request for request in site.requests if request[0] == "/dev.safetensors"]
    assert reads and {(host, sni) for _, host, sni in reads} == {("loras.test", "loras.test")}
