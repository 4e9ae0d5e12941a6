"""Choose the scoring protocol: the official wheel files (2025 / 2026) or the built-in lexicon.

Resolution order for the official files: --wheel-dir, then $AFFECTGPT_WHEEL_DIR, then the copy that
`affectgpt bench fetch-wheels` cached. With `--protocol auto` (the default) and no official files found,
the built-in lexicon is used and the result says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from affectgpt.errors import InputError
from affectgpt.lexicon.wheelmaps import WheelMaps

PROTOCOLS = ("auto", "official", "official-2026", "builtin")
WHEEL_DIR_ENV = "AFFECTGPT_WHEEL_DIR"


@dataclass(frozen=True)
class ResolvedProtocol:
    """The protocol chosen for a run, and why."""

    maps: WheelMaps
    source: str  # the wheel folder, or "package data"
    note: str  # one line for the user: which files, or why the built-in protocol is used

    @property
    def is_builtin(self) -> bool:
        return self.maps.protocol.startswith("builtin")


def resolve_protocol(protocol: str = "auto", wheel_dir: str | Path | None = None) -> ResolvedProtocol:
    """Find the word knowledge to score with.

    Raises:
        InputError: unknown protocol name; official protocol asked for but no wheel files found; a wheel
            folder with a missing file.
    """
    if protocol not in PROTOCOLS:
        from affectgpt.registry import unknown_name

        raise unknown_name("protocol", protocol, list(PROTOCOLS))
    if protocol == "builtin":
        return _builtin("asked for with --protocol builtin")
    folder = _find_wheel_dir(protocol, wheel_dir)
    if folder is None:
        if protocol == "auto":
            return _builtin("no official emotion-wheel files found: looked at --wheel-dir, "
                            "$AFFECTGPT_WHEEL_DIR and the `affectgpt bench fetch-wheels` cache")
        version = "2026" if protocol == "official-2026" else "2025"
        raise InputError(f"the {protocol} protocol needs the official emotion-wheel files", field="--wheel-dir",
                         fix=f"run `affectgpt bench fetch-wheels --version {version}`, or pass --wheel-dir / "
                             f"set ${WHEEL_DIR_ENV} to a folder holding them")
    from affectgpt.lexicon.official import load_official

    maps = load_official(folder)
    if protocol == "official-2026" and maps.protocol == "official-2025":
        raise InputError("--protocol official-2026 asked for, but this folder holds the 2025 files",
                         path=folder, field="format.csv",
                         fix="run `affectgpt bench fetch-wheels --version 2026` or drop --protocol")
    return ResolvedProtocol(maps, str(folder), f"{maps.protocol} emotion wheels from {folder}")


def _find_wheel_dir(protocol: str, wheel_dir: str | Path | None) -> Path | None:
    if wheel_dir is not None:
        return Path(wheel_dir)
    env = os.environ.get(WHEEL_DIR_ENV)
    if env:
        return Path(env)
    from affectgpt.lexicon.fetch import RELEASES, fetched_dir

    version = "2026" if protocol == "official-2026" else "2025"
    folder = fetched_dir(version)
    return folder if all((folder / name).is_file() for name in RELEASES[version].sha256) else None


def _builtin(reason: str) -> ResolvedProtocol:
    from affectgpt.lexicon.builtin import builtin_wheel_maps

    maps = builtin_wheel_maps()
    return ResolvedProtocol(maps, "package data",
                            f"BUILT-IN protocol {maps.protocol}, {reason}. Scores approximate the official "
                            "protocol and are not comparable with published numbers (docs/builtin-protocol.md)")
