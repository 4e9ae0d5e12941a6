"""`model get`: download a known released model (model/known.py) through huggingface_hub and import it.

Only what is asked is downloaded, through huggingface_hub's own cache (resumable; `HF_ENDPOINT`, `HF_TOKEN`,
`HF_HUB_CACHE` and `HF_HOME` are read when the download starts). The run's repository is listed at the pinned or
given revision and the checkpoint picked by the original naming (the highest epoch, or the one asked for); every
downloaded weight file is checked against the size and sha256 the hub lists for it, and a file that does not match
is removed from the cache and refused. The checkpoint is then imported (model/checkpoint.py) into our format with
the downloaded base-model folders as its base locations, and the commits every repository resolved to are recorded
in its config.json `base` record and in download.json beside it. Imports no torch until the import step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.model.known import MARKER, RUN_CHECKPOINT, KnownWeights, default_path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".h5", ".msgpack", ".onnx", ".ckpt")
SMALL_FILES = (".json", ".txt", ".model", ".tiktoken")
"""Besides weights, the base repositories' configs, tokenizers and preprocessor files are fetched."""


@dataclass
class GetReport:
    """What `model get` found, downloaded and imported."""

    checkpoints: list[str] = field(default_factory=list)
    chosen: str = ""
    epoch: int = 0
    revisions: dict[str, str] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    output: Path | None = None
    notes: list[str] = field(default_factory=list)
    imported: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def hub_endpoint() -> str | None:
    """$HF_ENDPOINT as it is now (huggingface_hub reads it once, when first imported)."""
    value = os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None


def hub_cache() -> str | None:
    """$HF_HUB_CACHE, else $HF_HOME/hub, as they are now; None: huggingface_hub's default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def _hub_error(exc: BaseException, repo: str, revision: str | None) -> InputError:
    """One clear InputError for what huggingface_hub raised."""
    import httpx2
    from huggingface_hub import errors

    where = hub_endpoint() or "https://huggingface.co"
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return InputError("downloads are turned off (HF_HUB_OFFLINE is set)", field="HF_HUB_OFFLINE",
                          fix="unset HF_HUB_OFFLINE to download")
    if isinstance(exc, errors.GatedRepoError):
        return InputError(f"{repo} needs an access grant", field=repo,
                          fix="accept its terms on the hub and set HF_TOKEN")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return InputError(f"{repo} was not found at {where}", field=repo,
                          fix="check HF_ENDPOINT, or set HF_TOKEN for a private repository")
    if isinstance(exc, errors.RevisionNotFoundError):
        return InputError(f"{repo} has no revision {revision!r}", field="--revision",
                          fix="give a branch, tag or commit of the repository")
    if isinstance(exc, httpx2.TransportError | errors.LocalEntryNotFoundError | ConnectionError):
        return InputError(f"cannot reach the hub at {where} ({type(exc).__name__})", field=repo,
                          fix="check the network (or HF_ENDPOINT) and run the same command again: finished "
                              "files are kept and a cut download resumes")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return InputError(f"a downloaded file of {repo} has the wrong size ({str(exc).splitlines()[0][:200]})",
                          field=repo, fix="run the same command again; if it fails again, the mirror "
                                          "(HF_ENDPOINT) serves a damaged file")
    if isinstance(exc, errors.HfHubHTTPError):
        reason = " ".join(str(exc).split())[:200]
        return InputError(f"the hub refused the request ({reason})", field=repo,
                          fix="check HF_ENDPOINT and HF_TOKEN, then run the same command again")
    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
    return InputError(f"the download failed ({reason})", field=repo,
                      fix="run the same command again: finished files are kept and a cut download resumes")


def _call(repo: str, revision: str | None, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    from huggingface_hub import errors

    try:
        return function(*args, **kwargs)
    except (OSError, errors.HfHubHTTPError, errors.EntryNotFoundError) as exc:  # httpx2 errors are not OSErrors
        raise _hub_error(exc, repo, revision) from exc
    except Exception as exc:  # httpx2.TransportError and friends
        import httpx2

        if isinstance(exc, httpx2.HTTPError):
            raise _hub_error(exc, repo, revision) from exc
        raise


def _offline_check() -> None:
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise InputError("downloads are turned off (HF_HUB_OFFLINE is set)", field="HF_HUB_OFFLINE",
                         fix="unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to download")


def _tree(api: Any, repo: str, sha: str, folder: str | None = None) -> dict[str, Any]:
    """Path -> RepoFile of the repository at commit `sha` (recursive)."""
    from huggingface_hub.hf_api import RepoFile

    entries = _call(repo, sha, lambda: list(api.list_repo_tree(repo, path_in_repo=folder, recursive=True,
                                                                  revision=sha)))
    return {e.path: e for e in entries if isinstance(e, RepoFile)}


def _resolve(api: Any, repo: str, revision: str | None) -> str:
    """The commit sha `revision` (default "main") of `repo` resolves to now."""
    info = _call(repo, revision, api.model_info, repo, revision=revision or "main")
    if not info.sha:
        raise InputError(f"the hub gave no commit for {repo} at {revision or 'main'}", field=repo,
                         fix="check HF_ENDPOINT")
    return str(info.sha)


def checkpoints_in(tree: dict[str, Any], run: str) -> list[tuple[int, str]]:
    """(epoch, path) of every checkpoint_<E>_loss_<x>.pth directly in the run folder, by epoch."""
    found = []
    for path in tree:
        folder, _, name = path.rpartition("/")
        match = RUN_CHECKPOINT.match(name)
        if folder == run and match:
            found.append((int(match["epoch"]), path))
    return sorted(found)


def pick_checkpoint(found: list[tuple[int, str]], epoch: int | None, repo: str, run: str) -> tuple[int, str]:
    if not found:
        raise InputError(f"no checkpoint_<epoch>_loss_<x>.pth in {repo}/{run}", field=repo,
                         fix="check --revision: the repository at this revision holds no run checkpoint")
    if epoch is None:
        return found[-1]
    for entry in found:
        if entry[0] == epoch:
            return entry
    raise InputError(f"no checkpoint of epoch {epoch} in {repo}/{run}", field="--epoch",
                     fix=f"choose one of {', '.join(str(e) for e, _ in found)}")


def _expected(entry: Any) -> tuple[int, str | None]:
    """(size, sha256 or None) the hub lists for a file: LFS files carry their sha256."""
    if entry.lfs is not None:
        return int(entry.lfs.size), str(entry.lfs.sha256)
    return int(entry.size), None


def verify(path: str | Path, entry: Any, repo: str) -> None:
    """Refuse a downloaded file whose size or sha256 differs from the hub's listing; the bad copy is removed
    from the cache so the next run downloads it again."""
    path = Path(path)
    size, sha256 = _expected(entry)
    actual = path.stat().st_size
    problem = None
    if actual != size:
        problem = f"has {actual} bytes but the hub lists {size}"
    elif sha256 is not None:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != sha256:
            problem = f"has sha256 {digest.hexdigest()[:16]}... but the hub lists {sha256[:16]}..."
    if problem:
        blob = path.resolve()
        for stale in (path, blob):
            with contextlib.suppress(OSError):
                stale.unlink()
        raise InputError(f"the downloaded file {problem}: it is damaged and was removed", path=f"{repo}/{entry.path}",
                         fix="run the same command again to download it afresh; if it fails again, the mirror "
                             "(HF_ENDPOINT) serves a damaged file")


def _base_files(tree: dict[str, Any]) -> list[str]:
    """The files a base model needs: configs, tokenizer, preprocessor, and one weights format (safetensors when
    there, else pytorch_model*.bin)."""
    names = sorted(tree)
    small = [n for n in names if "/" not in n and n.endswith(SMALL_FILES)]
    safetensors = [n for n in names if "/" not in n and n.endswith(".safetensors")]
    weights = safetensors or [n for n in names if "/" not in n and n.startswith("pytorch_model") and
                              n.endswith(".bin")]
    return small + weights


def download(known: KnownWeights, *, revision: str | None = None, epoch: int | None = None,
             log: Callable[[str], None] = lambda _: None) -> GetReport:
    """Download the run's checkpoint and the three base models; returns where everything is."""
    _offline_check()
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    endpoint, cache = hub_endpoint(), hub_cache()
    api = HfApi(endpoint=endpoint)
    report = GetReport()
    repo = known.repo
    sha = _resolve(api, repo, revision or known.revision)
    report.revisions["checkpoint"] = sha
    log(f"{repo}: revision {revision or known.revision or 'main'} is commit {sha}")
    tree = _tree(api, repo, sha, known.run)
    found = checkpoints_in(tree, known.run)
    report.checkpoints = [p for _, p in found]
    log(f"{repo}/{known.run}: found {len(found)} checkpoints: "
        f"{', '.join(p.rpartition('/')[2] for p in report.checkpoints) or 'none'}")
    report.epoch, report.chosen = pick_checkpoint(found, epoch, repo, known.run)
    log(f"downloading {report.chosen} (epoch {report.epoch})")
    path = _call(repo, sha, hf_hub_download, repo, report.chosen, revision=sha, cache_dir=cache, endpoint=endpoint)
    verify(path, tree[report.chosen], repo)
    report.folders["checkpoint"] = str(path)
    base_revisions = dict(known.base_revisions)
    for role in ("llm", "visual_encoder", "audio_encoder"):
        base_repo = getattr(known, role)
        base_sha = _resolve(api, base_repo, base_revisions.get(role))
        base_tree = _tree(api, base_repo, base_sha)
        files = _base_files(base_tree)
        log(f"downloading {base_repo} at {base_sha}: {len(files)} files")
        folder = _call(base_repo, base_sha, snapshot_download, base_repo, revision=base_sha, cache_dir=cache,
                       endpoint=endpoint, allow_patterns=files)
        for name in files:
            if name.endswith(WEIGHT_SUFFIXES):
                verify(Path(folder) / name, base_tree[name], base_repo)
        report.revisions[role], report.folders[role], report.files[role] = base_sha, str(folder), files
    return report


def get(known: KnownWeights, *, output: str | Path | None = None, revision: str | None = None,
        epoch: int | None = None, log: Callable[[str], None] = lambda _: None) -> GetReport:
    """Download `known` and import it into our checkpoint format at `output` (default: the per-user cache)."""
    from affectgpt.io.atomic import write_text
    from affectgpt.model.build import with_base_models
    from affectgpt.model.checkpoint import convert_original
    from affectgpt.model.config import get_preset

    report = download(known, revision=revision, epoch=epoch, log=log)
    output = Path(output) if output is not None else default_path(known.name)
    cfg = with_base_models(get_preset(known.preset), llm=report.folders["llm"],
                           visual_encoder=report.folders["visual_encoder"],
                           audio_encoder=report.folders["audio_encoder"])
    base = {"init": "pretrained", "llm": report.folders["llm"], "visual_encoder": report.folders["visual_encoder"],
            "audio_encoder": report.folders["audio_encoder"], "tokenizer": report.folders["llm"],
            "source": f"{known.repo}/{report.chosen}", "source_revision": report.revisions["checkpoint"],
            "llm_revision": report.revisions["llm"],
            "visual_encoder_revision": report.revisions["visual_encoder"],
            "audio_encoder_revision": report.revisions["audio_encoder"]}
    (output / MARKER).unlink(missing_ok=True)  # an install is complete only once download.json is written
    imported = convert_original(report.folders["checkpoint"], cfg, output, base=base)
    report.imported, report.skipped, report.notes = len(imported.loaded), imported.skipped, imported.inferred
    write_text(output / MARKER, json.dumps({
        "name": known.name, "repos": known.repos, "revisions": report.revisions, "checkpoint": report.chosen,
        "epoch": report.epoch, "available": report.checkpoints, "folders": report.folders,
        "files": report.files}, indent=2))
    report.output = output
    return report
