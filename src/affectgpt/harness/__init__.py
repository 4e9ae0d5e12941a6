"""Any multimodal model on MER-UniBench: backends, prompts, and the `bench run` orchestration (issue 16)."""
