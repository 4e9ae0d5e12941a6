"""Chat backends behind one interface (llm/base.py): an OpenAI-compatible server, a local transformers
model, and a persistent cache around either. They know nothing about emotions.

BACKENDS names them as strings, so choosing one imports only that one (`lexicon` extraction never
imports httpx or transformers).
"""

from affectgpt.registry import Registry

BACKENDS = Registry("llm backend", {
    "openai": "affectgpt.llm.openai_http:OpenAIChat",
    "transformers": "affectgpt.llm.local_hf:TransformersChat",
})
