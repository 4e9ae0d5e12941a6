"""Fixtures for the tiny random-weight checkpoints in ../shared/reference/fidelity/models (skip when absent)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
FIDELITY = Path(os.environ.get("AFFECTGPT_FIDELITY_DIR") or REFERENCE / "fidelity")
"""The fidelity fixtures and tiny models ($AFFECTGPT_FIDELITY_DIR overrides the location)."""
TINY_QWEN2 = FIDELITY / "models" / "tiny-qwen2"


def released_checkpoint(dest: Path) -> Path:
    """Our checkpoint folder `dest` made from the original `released` fixture checkpoint on the tiny base models
    (the same path a user's `affectgpt model import` takes); skips when the fixtures are absent."""
    if not (FIDELITY / "fixtures" / "released").is_dir():
        pytest.skip(f"fidelity fixtures not found under {FIDELITY}")
    from affectgpt.model import checkpoint
    from affectgpt.model.build import build_model, config_from_original

    meta = json.loads((FIDELITY / "fixtures" / "released" / "meta.json").read_text(encoding="utf-8"))
    models = FIDELITY / "models"
    cfg = config_from_original(meta["model_cfg"], llm=models / "tiny-qwen2", visual_encoder=models / "tiny-clip",
                               audio_encoder=models / "tiny-hubert")
    model, _ = build_model(cfg)
    checkpoint.import_original(model, checkpoint.read_original_state(FIDELITY / "fixtures" / "released" / "ckpt.pth"))
    return checkpoint.save(model, dest)

# The shipped tokenizer has no chat template; this is Qwen's layout, reduced, and like Qwen's real
# template it refuses roles it does not know.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role ' + m['role']) }}"
    "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_qwen2() -> Path:
    """The tiny Qwen2 checkpoint as shipped (tokenizer without a chat template)."""
    if not TINY_QWEN2.is_dir():
        pytest.skip(f"tiny Qwen2 checkpoint not found at {TINY_QWEN2} (present beside developer checkouts)")
    return TINY_QWEN2


@pytest.fixture(scope="session")
def chat_model_dir(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the checkpoint whose tokenizer_config.json has a chat template."""
    folder = tmp_path_factory.mktemp("tiny-qwen2-chat")
    for source in tiny_qwen2.iterdir():
        shutil.copyfile(source, folder / source.name)  # copyfile: the originals are read-only
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["chat_template"] = CHAT_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Every test that uses torch runs it on one thread: tiny models gain nothing from threads, and on a busy
    2-core machine torch's threads contend with numpy's spinning BLAS threads (seen: generation 100x slower).
    Test modules import torch at collection, so it is in sys.modules when it matters; nothing is imported here."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
