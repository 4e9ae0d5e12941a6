"""fetch-wheels: download the official emotion-wheel files at a pinned commit, check SHA-256, cache per user.

The files come from the public MERTools repository. Each protocol version is pinned to one commit and the
SHA-256 of each file is checked before anything is kept; a failed or partial download leaves no trace.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from affectgpt.errors import InputError
from affectgpt.io.cache import cache_root
from affectgpt.lexicon.official import PUBLISHED_SUMS, WHEEL_FILES

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/zeroQiaoba/MERTools"
BASE_URL_ENV = "AFFECTGPT_WHEELS_BASE_URL"

@dataclass(frozen=True)
class WheelRelease:
    """One pinned version of the official wheel files."""

    version: str
    commit: str
    folder: str
    sha256: dict[str, str]

    def url(self, base_url: str, name: str) -> str:
        return f"{base_url.rstrip('/')}/{self.commit}/{self.folder}/{name}"


RELEASES: dict[str, WheelRelease] = {
    "2025": WheelRelease(
        "2025", "fb8dda0ebd52281f69affcbec3cc34dfd281f1ba", "MER2025/MER2025_Track23/emotion_wheel",
        PUBLISHED_SUMS["official-2025"]),
    "2026": WheelRelease(
        "2026", "1052cb82fb05b91f821bd197de5bb123fcc9b0e3", "MER2026/MER2026_Track2/emotion_wheel",
        PUBLISHED_SUMS["official-2026"]),
}
"""Protocol version -> pinned release. 2025 is the version behind the published numbers."""


def fetched_dir(version: str) -> Path:
    """Where `fetch_wheels(version)` keeps its files."""
    return cache_root() / "emotion_wheel" / version


def get_release(version: str) -> WheelRelease:
    if version not in RELEASES:
        from affectgpt.registry import unknown_name

        raise unknown_name("wheel version", version, sorted(RELEASES))
    return RELEASES[version]


def is_complete(folder: Path, release: WheelRelease) -> bool:
    """True when every file is present with the pinned SHA-256."""
    return all((folder / name).is_file() and _sha256(folder / name) == digest
               for name, digest in release.sha256.items())


def fetch_wheels(version: str = "2025", *, base_url: str | None = None, dest: Path | None = None,
                 timeout: float = 30.0, force: bool = False) -> Path:
    """Download, verify and cache the wheel files of `version`; return their folder.

    Args:
        version: "2025" (published numbers) or "2026" (fixed surface forms).
        base_url: where `<commit>/<folder>/<file>` is served; default $AFFECTGPT_WHEELS_BASE_URL or GitHub.
        dest: the folder to fill; default the per-user cache.
        timeout: seconds per request.
        force: download even when a verified copy is already there.

    Raises:
        InputError: a download failed or a file's checksum differs (nothing is kept then).
    """
    release = get_release(version)
    base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    dest = Path(dest) if dest is not None else fetched_dir(version)
    if not force and is_complete(dest, release):
        return dest
    _check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for name in WHEEL_FILES:
            url = release.url(base_url, name)
            data = _download(url, timeout)
            digest = hashlib.sha256(data).hexdigest()
            if digest != release.sha256[name]:
                raise InputError(f"checksum mismatch: got sha256 {digest[:16]}..., expected "
                                 f"{release.sha256[name][:16]}...", path=url, field=name,
                                 fix="the server does not hold the pinned file; check --base-url")
            (staging / name).write_bytes(data)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


MAX_DOWNLOAD = 16 << 20  # the published wheel files are under 1 MiB each; nothing larger is read into memory


def _check_replaceable(dest: Path) -> None:
    """The folder is replaced whole by the verified files: refuse one that holds anything else (or is a file)."""
    if dest.exists() and not dest.is_dir():
        raise InputError("is a file, not a folder", path=dest, field="--dest", fix="name a folder for the wheel files")
    others = sorted(p.name for p in dest.iterdir() if p.name not in WHEEL_FILES) if dest.is_dir() else []
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise InputError(f"holds other files ({shown}); fetch-wheels replaces the whole folder", path=dest,
                         field="--dest", fix="name an empty folder, or one that holds only wheel files")


def _download(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "affectgpt-fetch-wheels"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_DOWNLOAD + 1)
    except urllib.error.HTTPError as exc:
        raise InputError(f"download failed: HTTP {exc.code}", path=url,
                         fix="check the network or --base-url, then run fetch-wheels again") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"download failed: {reason}", path=url,
                         fix="check the network or --base-url, or pass --wheel-dir with local copies") from exc
    if len(data) > MAX_DOWNLOAD:
        raise InputError(f"the server sent more than {MAX_DOWNLOAD >> 20} MiB for one wheel file", path=url,
                         fix="the server does not hold the pinned file; check --base-url")
    return data


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
