"""The interface every backend implements: its options model and one generator method.

    options = backend.options(**form_values)       # validated, with the backend's defaults
    for event in backend.run(request, options, key=...):
        ...

`EditRequest` (backend/request.py) is what every backend does; a backend's own
choices (fal's sync mode, the local model) live in its options model, a small frozen
pydantic model declared beside the backend (the pattern of simonw/llm's per-model
`Options`). A run carries both, so that nothing a visitor picks changes another
visitor's run, and a recipe records both.

Cancellation is closing the generator (`gen.close()`, which Gradio does when a
person presses Stop or closes the tab): the backend's `finally` blocks cancel the
remote job or interrupt the pipeline. Backends must therefore yield regularly,
even when nothing changed, so that a close is noticed within about a second.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InvalidInput
from .events import Event
from .lora_header import ANY_FLUX2, ModelShape
from .lora_preflight import LoraInspector, describe
from .request import EditRequest, problems_from_validation_error


class BackendOptions(BaseModel):
    """A backend's own settings for one run. Subclasses declare `Field`s with a title,
    a description and limits: the page and the API docs are built from them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "BackendOptions":
        """The options from form or API values (other keys are ignored), validated with
        messages that name the field and the limit."""
        fields = {name: values[name] for name in cls.model_fields if name in values and values[name] is not None}
        try:
            return cls(**fields)
        except ValidationError as error:
            raise InvalidInput(problems_from_validation_error(error, cls)) from None


OptionsT = TypeVar("OptionsT", bound=BackendOptions)


class Backend(ABC, Generic[OptionsT]):
    #: shown on the page and recorded in recipes
    name: ClassVar[str] = "backend"
    #: this backend's options model
    options_model: ClassVar[type[BackendOptions]] = BackendOptions
    #: how many reference images this backend takes
    max_references: ClassVar[int] = 3
    #: how many runs of a sweep may run at once (hosted: fal does the work; local: one GPU)
    concurrent_runs: ClassVar[int] = 1

    def options(self, values: Mapping[str, Any]) -> OptionsT:
        """This run's options from the form's (or an API call's) values. Backends whose
        options depend on the operator's settings (the local model allow-list) check
        them here."""
        return self.options_model.from_values(values)  # type: ignore[return-value]

    def source(self, options: OptionsT) -> str:
        """What made the images, for the recipe: fal's endpoint, or the local model."""
        return self.name

    def lacks_key(self, key: str | None) -> bool:
        """Whether a run with the visitor's `key` (None: none given) would be refused for want
        of a key: checked with the form, so that the key is named with its other problems."""
        return False

    #: reads LoRA headers for the page (None: LoRAs are not checked before a run)
    lora_inspector: LoraInspector | None = None
    #: what a LoRA must fit, and the highest rank taken (None: any)
    lora_model: ModelShape = ANY_FLUX2
    lora_max_rank: int | None = None

    def describe_lora(self, index: int, path: str, options: OptionsT) -> str:
        """One line about LoRA `index`, from its header alone, before anything is spent: what
        it is and whether this backend can use it, or why it cannot be read ("": not checked)."""
        if self.lora_inspector is None:
            return ""
        return describe(self.lora_inspector, index, path, self.lora_model, self.lora_max_rank)

    def lora_folder(self) -> list[str]:
        """The LoRA files this server offers (the local backend's STUDIO_LORA_DIR), as a LoRA
        row names them."""
        return self.lora_inspector.folder_files() if self.lora_inspector else []

    def known_trigger_words(self, path: str) -> tuple[str, ...]:
        """A LoRA's trigger words, when its header is at hand (read before, or a folder file);
        nothing is fetched for this."""
        header = self.lora_inspector.known(path) if self.lora_inspector else None
        return header.trigger_words if header else ()

    @abstractmethod
    def run(self, request: EditRequest, options: OptionsT, *, key: str | None = None) -> Generator[Event, None, None]:
        """Run one edit, yielding events and ending with a Result.

        `key` is a per-visitor credential (used for this run only, never stored).
        Raises a StudioError subclass with a message a person can act on.
        Closing the generator cancels the run.
        """
