"""Markup that must stay text on the page: in a fal result, a recipe PNG, a visitor's input."""

from __future__ import annotations

from backend.request import build_request

EVIL = ("[link](https://evil.example) <img src=https://evil.example/t.png> "
        "![x](https://evil.example/x.png)")


def crafted_recipe() -> dict:
    """A recipe as a PNG made here carries it, with markup in every value a person sees."""
    request = build_request(prompt="x", image_urls=["image.png"]).model_dump(mode="json")
    return {"backend": EVIL, "endpoint": EVIL, "seed": EVIL,
            "request": {**request, "prompt": EVIL, "loras": [{"path": EVIL, "scale": 1.0}]}}
