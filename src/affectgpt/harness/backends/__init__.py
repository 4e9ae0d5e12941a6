"""The multimodal backends of `bench run` by name (BACKENDS), and `build_backend(name, **options)`.

Entries are "module:class" strings resolved on use, so choosing one imports only that one (`openai` never imports
torch). Each class takes its options as keyword arguments and follows harness.base.MultimodalBackend.
"""

from __future__ import annotations

from typing import Any

from affectgpt.registry import Registry

BACKENDS = Registry("multimodal backend", {
    "openai": "affectgpt.harness.backends.openai:OpenAIMultimodal",
    "transformers": "affectgpt.harness.backends.hf:HFMultimodal",
    "affectgpt": "affectgpt.harness.backends.affectgpt:AffectGPTBackend",
    "perception": "affectgpt.harness.backends.perception:PerceptionBackend",
})


def build_backend(name: str, **options: Any) -> Any:
    """The backend `name` built with `options`; an unknown name is an InputError with the closest name."""
    return BACKENDS.get(name)(**options)


def package_versions(*packages: str) -> dict[str, str]:
    """affectgpt's version and each installed package's (absent ones are left out), for provenance records."""
    from contextlib import suppress
    from importlib import metadata

    from affectgpt import __version__

    found = {"affectgpt": __version__}
    for package in packages:
        with suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found
