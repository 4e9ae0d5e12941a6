"""Offline perception: small shipped models read the speech, voice, face and text of a clip (not AffectGPT)."""

from affectgpt.perception.base import Clue, Perception, Reading, Scene
from affectgpt.perception.pipeline import Pipeline, describe_clip

__all__ = ["Clue", "Perception", "Pipeline", "Reading", "Scene", "describe_clip"]
