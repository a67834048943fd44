"""The checks and conversions of single setting values (backend/settings.py uses them).

Each takes the raw text of one environment variable (or pydantic's value) and gives back the
value, or raises; settings.py turns the failure into a message naming the variable. Imports
nothing from the rest of the `backend` package.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import AfterValidator


class SettingsError(ValueError):
    """A setting has a value the app cannot use."""


def zerogpu_flag(raw: str) -> bool:
    return raw.strip().lower() in ("1", "t", "true")


def flag(raw: str) -> bool:
    raw = raw.strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def comma_list(raw: Any) -> Any:
    """'a, b,,a' -> ['a', 'b']: stripped, empty entries dropped, repeats removed (order kept)."""
    if not isinstance(raw, str):
        return raw
    return list(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))


def lower(raw: Any) -> Any:
    return raw.lower() if isinstance(raw, str) else raw


def backend_list(raw: Any) -> Any:
    return comma_list(lower(raw))


def comma_split(raw: Any) -> Any:
    """'10, 20,30' -> ['10', ' 20', '30'] for pydantic to read as numbers (an empty entry is an error)."""
    return raw.split(",") if isinstance(raw, str) else raw


def one_of(*choices: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(value)
        return value

    return AfterValidator(check)


def http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise SettingsError("STUDIO_FAL_BASE_URL must start with http:// or https://")
    return value


def lora_folder(raw: Any) -> Any:
    if isinstance(raw, str) and not Path(raw).is_dir():
        raise SettingsError(f"STUDIO_LORA_DIR {raw!r} is not a folder")
    return raw


def outputs_folder(raw: Any) -> Any:
    """The outputs folder must lie in the working directory or the temp folder.

    Gradio hands a browser only copies of files from there (in its cache, under names
    made from a secret hash of their content); the outputs folder itself is never
    served, so one visitor cannot fetch another's results by guessing their names.
    Serving a folder elsewhere would need it in launch(allowed_paths=...), which
    serves every file in it to anyone who knows the path."""
    if not isinstance(raw, str):
        return raw
    folder = Path(raw).expanduser()
    places = [Path.cwd().resolve(), Path(tempfile.gettempdir()).resolve()]
    resolved = folder.absolute().resolve()
    if not any(resolved == place or place in resolved.parents for place in places):
        raise SettingsError(
            f"STUDIO_OUTPUTS {raw!r} must be inside the folder the app is started from ({places[0]}) "
            f"or the temp folder ({places[1]}); start the app from a folder that contains it"
        )
    return folder
