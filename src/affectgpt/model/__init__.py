"""The AffectGPT model (torch): frozen encoders, pooling, pre-fusion and an LLM with LoRA.

`affectgpt.model.config` imports no torch, so configs and presets work on the core install.
"""
