"""Knowledge of emotion words: the official emotion wheels and our own built-in affect lexicon. No torch."""
