"""backend/settings.py: the environment read with pydantic-settings, the model allow-list
(STUDIO_MODELS), one spelling per model (canonical_model), messages that name the variable,
a key that is never printed, and an import that loads nothing else of the backend."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.settings import (
    DEFAULT_FAL_ENDPOINT,
    DEFAULT_MODEL,
    Settings,
    SettingsError,
    canonical_model,
    on_zerogpu,
)

ROOT = Path(__file__).resolve().parent.parent.parent


def read(**env: str) -> Settings:
    """The settings from `env` alone, on the fal backend (what this machine has does not matter)."""
    return Settings.from_env({"STUDIO_BACKENDS": "fal", **env})


# -- defaults and plain values ----------------------------------------------------------------


def test_an_empty_environment_gives_the_defaults():
    settings = read()
    assert settings == dataclasses.replace(Settings(), backends=("fal",), default_backend="fal")
    assert settings.model == DEFAULT_MODEL and settings.models == (DEFAULT_MODEL,)
    assert settings.fal_endpoint == DEFAULT_FAL_ENDPOINT
    assert settings.fal_key is None and settings.lora_dir is None and settings.zerogpu is False


def test_values_are_read_stripped_with_their_types():
    settings = read(
        FAL_KEY="  key-1 ", STUDIO_FAL_TRANSPORT="QUEUE", STUDIO_FAL_BASE_URL="http://127.0.0.1:9",
        STUDIO_MAX_QUEUE="2.7", STUDIO_CONCURRENCY="1e2", STUDIO_RUN_TIMEOUT="30",
        STUDIO_TEXT_ENCODER_LAYERS=" 1, 2,3", STUDIO_COMPILE="Off", STUDIO_DEVICE=" cpu ",
        STUDIO_BACKENDS="FAL, fal", STUDIO_OUTPUTS_MAX_MB="0", STUDIO_MEMORY="model_offload",
    )
    assert settings.fal_key == "key-1" and type(settings.fal_key) is str
    assert settings.fal_transport == "queue" and settings.fal_base_url == "http://127.0.0.1:9"
    assert settings.max_queue == 2 and type(settings.max_queue) is int  # whole numbers are truncated
    assert settings.concurrency == 100 and type(settings.concurrency) is int
    assert settings.run_timeout == 30.0 and type(settings.run_timeout) is float
    assert settings.text_encoder_layers == (1, 2, 3)
    assert settings.compile_blocks is False and settings.device == "cpu"
    assert settings.backends == ("fal",) and settings.outputs_max_mb == 0 and settings.memory == "model_offload"


def test_a_blank_variable_counts_as_unset():
    assert read(STUDIO_MAX_QUEUE="  ", STUDIO_MEMORY="", FAL_KEY=" ", STUDIO_MODEL=" ") == read()


def test_a_lora_folder_is_a_path(tmp_path):
    assert read(STUDIO_LORA_DIR=str(tmp_path)).lora_dir == tmp_path


def test_the_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        read().model = "other/model"  # type: ignore[misc]


def test_with_no_mapping_the_process_environment_is_read(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setenv("STUDIO_BACKENDS", "fal")
    monkeypatch.setenv("STUDIO_MAX_QUEUE", "7")
    assert Settings.from_env().max_queue == 7
    assert Settings.from_env({"STUDIO_BACKENDS": "fal"}).max_queue == 64  # a mapping: only it


def test_zerogpu_is_read_from_spaces_zero_gpu():
    assert on_zerogpu({"SPACES_ZERO_GPU": " True "}) and on_zerogpu({"SPACES_ZERO_GPU": "1"})
    assert not on_zerogpu({}) and not on_zerogpu({"SPACES_ZERO_GPU": "false"})
    assert read(SPACES_ZERO_GPU="true").zerogpu is True


def test_the_upload_share_is_off_by_default_on_a_space_where_everyone_has_one_address():
    assert read().upload_mb_per_visitor == 1000
    assert read(SPACE_ID="someone/studio").upload_mb_per_visitor == 0
    assert read(SPACE_ID="someone/studio", STUDIO_UPLOAD_MB_PER_VISITOR="300").upload_mb_per_visitor == 300
    assert read(STUDIO_UPLOAD_MB_PER_VISITOR="0").upload_mb_per_visitor == 0


# -- STUDIO_MODELS --------------------------------------------------------------------------


def test_the_allowed_models_default_to_studio_model_alone():
    assert read(STUDIO_MODEL="org/model").models == ("org/model",)
    assert read(STUDIO_MODEL="org/model").model == "org/model"


def test_studio_models_lists_the_models_and_the_first_is_the_default():
    settings = read(STUDIO_MODELS=" org/a, org/b/ ,, org/a,org/c")
    assert settings.models == ("org/a", "org/b", "org/c")  # stripped, empty and repeated entries dropped
    assert settings.model == "org/a"


def test_studio_model_picks_the_default_among_studio_models():
    settings = read(STUDIO_MODELS="org/a,org/b", STUDIO_MODEL="org/b/")
    assert settings.model == "org/b" and settings.models == ("org/a", "org/b")


def test_an_all_empty_studio_models_counts_as_unset():
    assert read(STUDIO_MODELS=" , ,").models == (DEFAULT_MODEL,)
    assert read(STUDIO_MODELS=",", STUDIO_MODEL="org/x").models == ("org/x",)


def test_a_default_model_outside_the_allowed_ones_stops_the_start():
    with pytest.raises(SettingsError) as caught:
        read(STUDIO_MODELS="org/a,org/b", STUDIO_MODEL="org/c")
    message = str(caught.value)
    assert "STUDIO_MODEL 'org/c'" in message and "STUDIO_MODELS (org/a, org/b)" in message


def test_spellings_of_one_folder_are_one_model(tmp_path, monkeypatch):
    folder = tmp_path / "tiny"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    spellings = ["tiny", "tiny/", "./tiny", "./tiny//", " ./tiny ", str(folder), f"{folder}/", f"{tmp_path}/x/../tiny"]
    assert {canonical_model(name) for name in spellings} == {str(folder.resolve())}
    settings = read(STUDIO_MODELS=f"tiny/, ./tiny, {folder}", STUDIO_MODEL="./tiny/")
    assert settings.models == (str(folder.resolve()),) and settings.model == str(folder.resolve())


def test_a_path_that_is_not_a_folder_yet_is_still_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert canonical_model("./later/") == str(tmp_path.resolve() / "later")
    assert canonical_model("../up") == str(tmp_path.resolve().parent / "up")
    assert canonical_model("~/m") == str((Path.home() / "m").resolve())


def test_a_repo_id_is_kept_as_written_without_a_trailing_slash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    assert canonical_model("black-forest-labs/FLUX.2-dev/") == "black-forest-labs/FLUX.2-dev"
    assert canonical_model("  Org/Model  ") == "Org/Model"
    assert canonical_model("org/model") != canonical_model("./org/model")


# -- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "message"), [
    ("STUDIO_MAX_QUEUE", "x", "STUDIO_MAX_QUEUE must be a number, not 'x'"),
    ("STUDIO_MAX_QUEUE", "0", "STUDIO_MAX_QUEUE must be at least 1, not '0'"),
    ("STUDIO_MAX_QUEUE", "nan", "STUDIO_MAX_QUEUE must be a finite number, not 'nan'"),
    ("STUDIO_CONCURRENCY", "-inf", "STUDIO_CONCURRENCY must be a finite number, not '-inf'"),
    ("STUDIO_RUN_TIMEOUT", "0.5", "STUDIO_RUN_TIMEOUT must be at least 1, not '0.5'"),
    ("STUDIO_PREVIEW_DECODE_EVERY", "-0.5", "STUDIO_PREVIEW_DECODE_EVERY must be at least 0, not '-0.5'"),
    ("STUDIO_MAX_SEQUENCE_LENGTH", "8", "STUDIO_MAX_SEQUENCE_LENGTH must be at least 16, not '8'"),
    ("STUDIO_OUTPUTS_MAX_MB", " lots ", "STUDIO_OUTPUTS_MAX_MB must be a number, not 'lots'"),
    ("STUDIO_UPLOAD_MB_PER_VISITOR", "-1", "STUDIO_UPLOAD_MB_PER_VISITOR must be at least 0, not '-1'"),
    ("STUDIO_FAL_TRANSPORT", "WS", "STUDIO_FAL_TRANSPORT must be 'stream' or 'queue', not 'ws'"),
    ("STUDIO_FAL_BASE_URL", "ftp://x", "STUDIO_FAL_BASE_URL must start with http:// or https://"),
    ("STUDIO_BACKENDS", "GPU", "STUDIO_BACKENDS takes 'fal', 'local' or 'fal,local', not 'gpu'"),
    ("STUDIO_BACKENDS", ",", "STUDIO_BACKENDS takes 'fal', 'local' or 'fal,local', not ','"),
    ("STUDIO_MEMORY", "cpu", "STUDIO_MEMORY must be gpu, model_offload or group_offload, not 'cpu'"),
    ("STUDIO_LORA_DIR", "/nope", "STUDIO_LORA_DIR '/nope' is not a folder"),
    ("STUDIO_TEXT_ENCODER_LAYERS", "a,b", "STUDIO_TEXT_ENCODER_LAYERS must be numbers like 10,20,30, not 'a,b'"),
    ("STUDIO_TEXT_ENCODER_LAYERS", "1,,2", "STUDIO_TEXT_ENCODER_LAYERS must be numbers like 10,20,30, not '1,,2'"),
    ("STUDIO_COMPILE", "Maybe", "STUDIO_COMPILE must be 1 or 0, not 'maybe'"),
])
def test_a_bad_value_is_a_settings_error_that_names_the_variable(name, value, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"STUDIO_BACKENDS": "fal", name: value})
    assert type(caught.value) is SettingsError  # never pydantic's ValidationError
    assert str(caught.value) == message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- the key --------------------------------------------------------------------------------


def test_the_key_is_never_in_the_repr():
    settings = read(FAL_KEY="fal-secret-key-123")
    assert settings.fal_key == "fal-secret-key-123"
    assert "fal-secret-key-123" not in repr(settings) and "fal-secret-key-123" not in str(settings)


# -- imports --------------------------------------------------------------------------------


def test_importing_the_settings_loads_no_backend_module_nor_fal_client():
    code = (
        "import json, sys\n"
        "import backend.settings\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "                        if m.split('.')[0] in ('fal_client', 'backend', 'torch', 'gradio'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "backend.settings" in loaded
    assert not [m for m in loaded if m.startswith(("fal_client", "torch", "gradio", "backend.fal"))], loaded
    assert "backend.zerogpu" not in loaded
