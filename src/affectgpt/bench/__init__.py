"""MER-UniBench: score free-form emotion predictions on the 9 benchmark test sets. Pure Python, no torch."""
