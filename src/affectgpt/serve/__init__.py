"""`affectgpt serve`: a web demo and an OpenAI-compatible API over one loaded model."""
