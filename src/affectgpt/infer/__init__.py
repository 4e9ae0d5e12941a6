"""Inference: clips -> AffectGPT answers (describe one clip; predict a dataset, resumably)."""
