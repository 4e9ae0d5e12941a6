"""Choose the scoring protocol: the official wheel files (2025 / 2026) or the built-in lexicon.

Resolution order for the official files: --wheel-dir, then $AFFECTGPT_WHEEL_DIR, then the copy that
`affectgpt bench fetch-wheels` cached. With `--protocol auto` (the default) and no official files found,
the built-in lexicon is used and the result says so.

The protocol asked for is the protocol scored: `official` needs the 2025 files byte for byte and
`official-2026` the 2026 ones (lexicon/official.py PUBLISHED_SUMS); a folder holding other files (the other
version, or edited files) is refused, naming the files that differ. Only `auto` accepts whatever official files
it finds (a published version or `official-custom-<sha>`), and its result names the protocol found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from affectgpt.errors import InputError
from affectgpt.lexicon.wheelmaps import WheelMaps

PROTOCOLS = ("auto", "official", "official-2026", "builtin")
EXPECTED_ID = {"official": "official-2025", "official-2026": "official-2026"}
"""--protocol -> the protocol id its wheel files must give."""
PUBLISHED_SUMS_IDS = frozenset(EXPECTED_ID.values())
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

    maps = load_official(folder)  # reads and hashes the files once; the version check uses its sums
    if protocol in EXPECTED_ID:
        _check_version(protocol, folder, maps)
    return ResolvedProtocol(maps, str(folder), f"{maps.protocol} emotion wheels from {folder}")


def _check_version(protocol: str, folder: Path, maps: WheelMaps) -> None:
    """InputError unless the wheel files in `folder` (read into `maps`) are, byte for byte, those `protocol`
    scores with."""
    from affectgpt.lexicon.official import differing_files

    found, expected = maps.protocol, EXPECTED_ID[protocol]
    if found == expected:
        return
    differ = differing_files(dict(maps.sources), expected)
    what = "the MER2026 files (official-2026)" if found == "official-2026" else \
        "the MER-UniBench 2025 files (official-2025)" if found == "official-2025" else \
        f"edited files ({found})"
    if found in PUBLISHED_SUMS_IDS:
        other = next(p for p, pid in EXPECTED_ID.items() if pid == found)
        fix = f"pass --protocol {other} to score with them, or --protocol auto to accept what is found"
    else:
        version = "2026" if protocol == "official-2026" else "2025"
        fix = (f"run `affectgpt bench fetch-wheels --version {version}` and drop --wheel-dir, or pass "
               "--protocol auto to score with these files as a custom protocol")
    raise InputError(f"--protocol {protocol} scores with the published {expected} files, but this folder holds "
                     f"{what}: {', '.join(differ)} differ{'s' if len(differ) == 1 else ''} from them",
                     path=folder, field="--protocol", fix=fix)


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
