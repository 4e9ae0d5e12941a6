"""The known released weights (a pinned table): hub repositories of the trained run and its base models, and
where `affectgpt model get` installs each. Imports no torch and nothing from the network.

The table follows the original README: the trained AffectGPT run is in the hub repository `MERChallenge/AffectGPT`
as `<run>/checkpoint_<EEEEEE>_loss_<x>.pth`; its base models are Qwen2.5-7B-Instruct, CLIP ViT-L/14 and Chinese
HuBERT-large. The file list of the run cannot be pinned here: `model get` lists the repository at download time and
picks the checkpoint by that naming (model/download.py). A `revision` of None resolves "main" at download time and
records the commit it resolved to beside the imported checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_CHECKPOINT = re.compile(r"^checkpoint_(?P<epoch>\d+)_loss_(?P<loss>[-0-9.e]+)\.pth$")
"""An original run's checkpoint file name: checkpoint_<EEEEEE>_loss_<x>.pth."""


@dataclass(frozen=True, slots=True)
class KnownWeights:
    """One released model.

    Attributes:
        name: what `affectgpt model get NAME` takes.
        description: one line for `model ls`.
        repo: the hub repository of the trained run.
        run: the run's folder inside `repo` (it holds checkpoint_<E>_loss_<x>.pth files).
        preset: the model preset (model/config.py PRESETS) the run was trained with.
        llm, visual_encoder, audio_encoder: hub repositories of the base models.
        revision: the commit of `repo` to download; None resolves "main" at download time (and records it).
        base_revisions: commits of the base repositories, by role; a missing role resolves "main".
    """

    name: str
    description: str
    repo: str
    run: str
    preset: str
    llm: str
    visual_encoder: str
    audio_encoder: str
    revision: str | None = None
    base_revisions: tuple[tuple[str, str], ...] = ()

    @property
    def repos(self) -> dict[str, str]:
        """Role -> hub repository: checkpoint, llm, visual_encoder, audio_encoder."""
        return {"checkpoint": self.repo, "llm": self.llm, "visual_encoder": self.visual_encoder,
                "audio_encoder": self.audio_encoder}


KNOWN: dict[str, KnownWeights] = {
    "affectgpt-mercaptionplus": KnownWeights(
        name="affectgpt-mercaptionplus",
        description="the released AffectGPT (MER-Caption+, face input, attention pooling and fusion)",
        repo="MERChallenge/AffectGPT",
        run="emercoarse_highlevelfilter4_outputhybird_bestsetup_bestfusion_lz",
        preset="released",
        llm="Qwen/Qwen2.5-7B-Instruct",
        visual_encoder="openai/clip-vit-large-patch14",
        audio_encoder="TencentGameMate/chinese-hubert-large",
    ),
}
"""Named released weights; `affectgpt model ls` lists them and `affectgpt model get NAME` installs one."""

MARKER = "download.json"
"""Written beside an installed checkpoint: what was downloaded, from which commits."""


def get_known(name: str) -> KnownWeights:
    """The entry of `name`; an unknown name is an InputError with the closest known one."""
    if name not in KNOWN:
        from affectgpt.registry import unknown_name

        raise unknown_name("known model", name, sorted(KNOWN))
    return KNOWN[name]


def default_path(name: str) -> Path:
    """Where `model get NAME` installs by default: <per-user cache>/models/<name>."""
    from affectgpt.io.cache import cache_root

    return cache_root() / "models" / name


def installed_path(name: str, dir: str | Path | None = None) -> Path | None:
    """The imported checkpoint folder of known model `name` (`dir`, or the default under the per-user cache), or
    None when no complete install is there (config.json, model.safetensors and download.json all present)."""
    folder = Path(dir) if dir is not None else default_path(name)
    if all((folder / part).is_file() for part in ("config.json", "model.safetensors", MARKER)):
        return folder
    return None

DOWNLOAD_FIX = ("give a local model folder; for the released model run `affectgpt model get NAME` once (names: "
                "`affectgpt model ls`), or pass --allow-download to fetch hub ids into the Hugging Face cache")
"""The fix of every "cannot load this base model" error: nothing is downloaded unless asked."""
