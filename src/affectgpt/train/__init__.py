"""Training AffectGPT with accelerate: configs, optimiser and schedule, the loop, exact resume."""
