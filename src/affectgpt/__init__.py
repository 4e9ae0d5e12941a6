"""affectgpt: MER-UniBench scoring, emotion extraction and the AffectGPT model, in one package.

Importing the package is cheap: it loads nothing heavy (no numpy, no torch). The sub-packages are
imported on use: ``affectgpt.bench`` (the scorer), ``affectgpt.lexicon`` (emotion-word knowledge).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
