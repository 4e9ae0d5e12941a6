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
from affectgpt.lexicon.official import WHEEL_FILES, cache_root

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/zeroQiaoba/MERTools"
BASE_URL_ENV = "AFFECTGPT_WHEELS_BASE_URL"

_SHARED_SUMS = {
    "synonym.xlsx": "23f81f9ab1d2418aaf96775304fb5dc52c62bb5d5ef652a97471d045fc9d2e29",
    "wheel1.xlsx": "e70485d354b82a7491ff24648273182a5f4f13f92c76e6b3e4f9033f5e6afcc1",
    "wheel2.xlsx": "acc001e076a8e60440361f58dd8c05ed900c4890c84bb7d8d1df93708a7d9c87",
    "wheel3.xlsx": "d62f30bf88c17c55876634cd088eacaef98278fc25457474364439872f9dbf83",
    "wheel4.xlsx": "660260561b7fe15550f3679a01e7c783608ce3403d4c28db0a88520f68d83aea",
    "wheel5.xlsx": "2dd4595b2cf8e7628ca06a416a8e38ac831614b244f23d1ae613dc34007649f1",
}


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
        {"format.csv": "ba6de7d61db8e129d1d7ef8a2aae22a9e93a2c2e3e683e6f2735d04455f016f2", **_SHARED_SUMS}),
    "2026": WheelRelease(
        "2026", "1052cb82fb05b91f821bd197de5bb123fcc9b0e3", "MER2026/MER2026_Track2/emotion_wheel",
        {"format.csv": "82234299875465ecf6c196ace42ffbe745baaeea72b5e39de955af36929982a4", **_SHARED_SUMS}),
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


def _download(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "affectgpt-fetch-wheels"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise InputError(f"download failed: HTTP {exc.code}", path=url,
                         fix="check the network or --base-url, then run fetch-wheels again") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"download failed: {reason}", path=url,
                         fix="check the network or --base-url, or pass --wheel-dir with local copies") from exc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
