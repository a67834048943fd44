"""Backends for FLUX.2 LoRA Edit Studio: the request model, events, errors and the fal backend.

Importing this package must stay light (no torch, no diffusers): the hosted app
starts on small CPU machines.
"""
