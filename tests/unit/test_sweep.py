"""Planning a sweep: its cells in row-major order, their captions, and values checked against the
request model's limits (running sweeps through the launched app: tests/app/test_sweep.py)."""

from __future__ import annotations

import pytest

from backend.errors import InvalidInput
from backend.request import build_request
from backend.sweep import SweepAxis, plan_sweep


def test_a_plan_is_row_major_with_captions_and_validated_values():
    request = build_request(prompt="x", image_urls=["a.png"], loras=[{"path": "o/l", "scale": 1}], seed=1)
    plan = plan_sweep(request, SweepAxis.parse("lora1_scale", "0.4, 0.7"), SweepAxis.parse("seed", "1, 2"))
    assert plan.captions == ("lora1 0.4 · seed 1", "lora1 0.7 · seed 1", "lora1 0.4 · seed 2", "lora1 0.7 · seed 2")
    assert plan.names[1] == "lora1-scale-0.7_seed-1" and plan.shape == "2×2"
    assert [(c.loras[0].scale, c.seed) for c in plan.cells] == [(0.4, 1), (0.7, 1), (0.4, 2), (0.7, 2)]
    with pytest.raises(InvalidInput, match="LoRA 1 scale: must be at most 4"):
        plan_sweep(request, SweepAxis.parse("lora1_scale", "1, 5"))
    with pytest.raises(InvalidInput, match="at most 16 cells per sweep"):
        plan_sweep(request, SweepAxis.parse("seed", "1,2,3,4,5"), SweepAxis.parse("guidance_scale", "1,2,3,4"))
    with pytest.raises(InvalidInput, match="LoRA 2 scale: LoRA 2 is not switched on"):
        plan_sweep(request, SweepAxis.parse("lora2_scale", "1"))
    with pytest.raises(InvalidInput, match="Steps: 4.5 is not a whole number"):
        SweepAxis.parse("num_inference_steps", "4.5")
