"""Extraction: free text -> open-vocabulary emotion words -> positive / negative / neutral.

EXTRACTORS names the extractors as strings, so `--backend lexicon` never imports an HTTP client or
transformers. Each implements extract.base.Extractor.
"""

from affectgpt.registry import Registry

EXTRACTORS = Registry("extraction backend", {
    "lexicon": "affectgpt.extract.lexicon_extractor:LexiconExtractor",
    "openai": "affectgpt.extract.llm_extractor:openai_extractor",
    "transformers": "affectgpt.extract.llm_extractor:transformers_extractor",
})
