"""The endpoint's input schema: what ``fal-ai/flux-2/lora/edit`` accepts, checked the way fal's
pydantic model does, with errors in its shape (``{"loc": ["body", ...], "msg", "type", "ctx"?, "input"?}``)."""

from __future__ import annotations

from typing import Any

APP = "fal-ai/flux-2/lora/edit"
SUPPORTED_APPS = {APP}
PRESETS = {
    "square_hd": (1024, 1024), "square": (512, 512),
    "portrait_4_3": (768, 1024), "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576),
}
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
ACCELERATIONS = ("none", "regular", "high")


class ValidationFailed(Exception):
    def __init__(self, errors: list):
        super().__init__("validation failed")
        self.errors = errors



def error_item(loc: list, msg: str, type_: str, value: Any = None, ctx: dict | None = None) -> dict:
    item = {"loc": ["body", *loc], "msg": msg, "type": type_}
    if ctx is not None:
        item["ctx"] = ctx
    if value is not None:
        item["input"] = value
    return item


def _is_int(v: Any) -> bool:
    return not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))


def _is_num(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float))


def _check_range(errs: list, loc: list, v: Any, lo: float, hi: float, integer: bool) -> None:
    """Append pydantic's type / ge / le errors for a bounded number."""
    if not (_is_int(v) if integer else _is_num(v)):
        kind = (
            ("int_type", "Input should be a valid integer") if integer
            else ("float_type", "Input should be a valid number")
        )
        errs.append(error_item(loc, kind[1], kind[0], v))
    elif v < lo:
        errs.append(error_item(loc, f"Input should be greater than or equal to {lo}", "greater_than_equal", v,
                               {"ge": lo}))
    elif v > hi:
        errs.append(error_item(loc, f"Input should be less than or equal to {hi}", "less_than_equal", v, {"le": hi}))


def _check_literal(errs: list, loc: list, v: Any, allowed: tuple) -> None:
    if v not in allowed:
        expected = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
        errs.append(error_item(loc, f"Input should be {expected}", "literal_error", v, {"expected": expected}))


def _check_list(errs: list, loc: list, v: Any, lo: int, hi: int | None) -> bool:
    if not isinstance(v, list):
        errs.append(error_item(loc, "Input should be a valid list", "list_type", v))
        return False
    if len(v) < lo:
        errs.append(error_item(loc, f"List should have at least {lo} item after validation, not {len(v)}",
                               "too_short", v, {"field_type": "List", "min_length": lo, "actual_length": len(v)}))
        return False
    if hi is not None and len(v) > hi:
        errs.append(error_item(loc, f"List should have at most {hi} items after validation, not {len(v)}",
                               "too_long", v, {"field_type": "List", "max_length": hi, "actual_length": len(v)}))
        return False
    return True


def validate_input(args: Any) -> tuple[dict, list]:
    """Check ``args`` against the endpoint's schema; return (args with defaults, pydantic-style errors).

    Image URLs are only type-checked here; fetching and decoding them happens in FakeFal._load_images.
    """
    if not isinstance(args, dict):
        return {}, [{"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from",
                     "type": "model_attributes_type", "input": args}]
    errs: list = []
    out = {"loras": [], "guidance_scale": 2.5, "num_inference_steps": 28, "image_size": None, "num_images": 1,
           "seed": None, "acceleration": "regular", "enable_prompt_expansion": False,
           "enable_safety_checker": True, "sync_mode": False, "output_format": "png", **args}
    for name in ("prompt", "image_urls"):
        if name not in args:
            errs.append(error_item([name], "Field required", "missing", args))
    if "prompt" in args and not isinstance(args["prompt"], str):
        errs.append(error_item(["prompt"], "Input should be a valid string", "string_type", args["prompt"]))
    if "image_urls" in args and _check_list(errs, ["image_urls"], args["image_urls"], 1, None):
        for i, u in enumerate(args["image_urls"]):
            if not isinstance(u, str):
                errs.append(error_item(["image_urls", i], "Input should be a valid string", "string_type", u))
    if _check_list(errs, ["loras"], out["loras"], 0, 3):
        out["loras"] = [_validate_lora(errs, i, lo) for i, lo in enumerate(out["loras"])]
    _check_range(errs, ["guidance_scale"], out["guidance_scale"], 0, 20, integer=False)
    _check_range(errs, ["num_inference_steps"], out["num_inference_steps"], 4, 50, integer=True)
    _check_range(errs, ["num_images"], out["num_images"], 1, 4, integer=True)
    _validate_image_size(errs, out["image_size"])
    if out["seed"] is not None and not _is_int(out["seed"]):
        errs.append(error_item(["seed"], "Input should be a valid integer", "int_type", out["seed"]))
    _check_literal(errs, ["acceleration"], out["acceleration"], ACCELERATIONS)
    _check_literal(errs, ["output_format"], out["output_format"], tuple(FORMATS))
    for name in ("enable_prompt_expansion", "enable_safety_checker", "sync_mode"):
        if not isinstance(out[name], bool):
            errs.append(error_item([name], "Input should be a valid boolean", "bool_type", out[name]))
    for name in sorted(args.keys() - _FIELDS):
        errs.append(error_item([name], "Extra inputs are not permitted", "extra_forbidden", args[name]))
    return out, errs


_FIELDS = {"prompt", "image_urls", "loras", "guidance_scale", "num_inference_steps", "image_size", "num_images",
           "seed", "acceleration", "enable_prompt_expansion", "enable_safety_checker", "sync_mode", "output_format"}


def _validate_lora(errs: list, i: int, lora: Any) -> Any:
    if not isinstance(lora, dict):
        errs.append(error_item(["loras", i], "Input should be a valid dictionary or object to extract fields from",
                         "model_attributes_type", lora))
        return lora
    lora = {"scale": 1.0, **lora}
    if "path" not in lora:
        errs.append(error_item(["loras", i, "path"], "Field required", "missing", lora))
    elif not isinstance(lora["path"], str):
        errs.append(error_item(["loras", i, "path"], "Input should be a valid string", "string_type", lora["path"]))
    _check_range(errs, ["loras", i, "scale"], lora["scale"], 0, 4, integer=False)
    for extra in lora.keys() - {"path", "scale"}:
        errs.append(error_item(["loras", i, extra], "Extra inputs are not permitted", "extra_forbidden", lora[extra]))
    return lora


def _validate_image_size(errs: list, size: Any) -> None:
    if size is None:
        return
    if isinstance(size, str):
        _check_literal(errs, ["image_size"], size, tuple(PRESETS))
    elif isinstance(size, dict):
        for dim in ("width", "height"):
            _check_range(errs, ["image_size", dim], size.get(dim, 512), 512, 2048, integer=True)
        for extra in size.keys() - {"width", "height"}:
            errs.append(error_item(["image_size", extra], "Extra inputs are not permitted", "extra_forbidden",
                                   size[extra]))
    else:
        errs.append(error_item(["image_size"], "Input should be a valid dictionary or object to extract fields from",
                         "model_attributes_type", size))

