"""Broken and hostile files for the robustness matrix, each made by a test from a valid file of the same role.

A *role* is the kind of file a command option expects (a CSV table, an .npz, a YAML recipe, a video...); a *kind*
is one way such a file can be broken or hostile (random bytes, empty, truncated, another encoding, a zip bomb, a
malicious pickle...). `make(kind, role, valid, folder)` writes the broken file (or folder) and returns its path;
`KINDS[role]` lists the kinds that make sense for a role. Nothing here needs the network or a model download.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ZIP_BOMB_LIMIT = 8 * 1024 * 1024  # the matrix sets AFFECTGPT_MAX_INFLATE_BYTES to this
MARKER = "pwned-by-a-pickle"  # a malicious pickle would create this file next to itself


class _Exploit:
    """Unpickling this runs `touch <marker>`: a safe reader never lets it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _random_bytes(n: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    data = bytearray(rng.getrandbits(8) for _ in range(n))
    data[:4] = b"\xff\xfe\x80\x81"  # never valid UTF-8, never a zip or npy magic
    return bytes(data)


def _npz_of_object(path: Path, member: str, obj: object) -> None:
    header = np.lib.format.header_data_from_array_1_0(np.empty((), dtype=object))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(pickle.dumps(obj, protocol=3))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, buffer.getvalue())


BOMB_BYTES = 1 << 30  # what the zip bomb inflates to: far more than a case's memory limit lets it allocate
_BOMBS: dict[str, bytes] = {}


def _zip_bomb(path: Path) -> None:
    """An .npz whose one member inflates to 1 GiB of zeros (about 1 MiB on disk; made once, then copied)."""
    if "npz" not in _BOMBS:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
                archive.open("filenames.npy", "w", force_zip64=True) as member:
            chunk = bytes(4 << 20)
            for _ in range(BOMB_BYTES // len(chunk)):
                member.write(chunk)
        _BOMBS["npz"] = buffer.getvalue()
    path.write_bytes(_BOMBS["npz"])


def _cut(valid: Path, target: Path, fraction: float) -> None:
    data = valid.read_bytes()
    target.write_bytes(data[:max(1, int(len(data) * fraction))])


def _text_rows(valid: Path) -> tuple[list[str], list[list[str]]]:
    import csv

    with open(valid, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write_rows(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> None:
    import csv

    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _set_column(valid: Path, target: Path, column: str, values: list[str]) -> None:
    header, rows = _text_rows(valid)
    at = header.index(column)
    for row, value in zip(rows, values, strict=False):
        row[at] = value
    _write_rows(target, header, rows)


# ---- the kinds, by role -------------------------------------------------------------------------------------------
def _common(kind: str, valid: Path, target: Path) -> bool:
    """The kinds every file role has; False when `kind` is not one of them."""
    if kind == "random_bytes":
        target.write_bytes(_random_bytes(4096))
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "truncated_third":
        _cut(valid, target, 1 / 3)
    elif kind == "truncated_two_thirds":
        _cut(valid, target, 2 / 3)
    elif kind == "directory":
        target.mkdir()
        shutil.copy(valid, target / valid.name)
    else:
        return False
    return True


def _table(kind: str, valid: Path, target: Path) -> None:
    if kind == "wrong_encoding":
        target.write_text(valid.read_text(encoding="utf-8"), encoding="utf-16")
    elif kind == "bom":
        target.write_bytes(b"\xef\xbb\xbf" + valid.read_bytes())
    elif kind == "nan_values":
        header, rows = _text_rows(valid)
        _set_column(valid, target, header[-1], ["nan"] * len(rows))
    elif kind == "huge_field":
        header, rows = _text_rows(valid)
        _set_column(valid, target, header[-1], ["happy " * 400_000])  # 2.4 MB in one cell
    elif kind == "traversal_names":
        _set_column(valid, target, "name", ["../../escaped", str(target.parent.parent / "absolute_escape")])
    elif kind == "long_row":
        target.write_bytes(valid.read_bytes() + b"extra,row,with,far,too,many,cells,for,the,header\n")
    elif kind == "unterminated_quote":
        header, rows = _text_rows(valid)
        _write_rows(target, header, rows)
        target.write_text(target.read_text(encoding="utf-8") + rows[0][0] + ',"an open quote never closed\n',
                          encoding="utf-8")
    elif kind == "wrong_column":  # e.g. generated text where emotion words are expected
        header, rows = _text_rows(valid)
        _write_rows(target, [*header[:-1], "openset" if header[-1] == "text" else "text"], rows)
    else:
        raise KeyError(kind)


def _clip_folder(kind: str, valid: Path, target: Path) -> None:
    """A folder of clips (videos or clip-cache files) with one broken clip in it."""
    target.mkdir()
    if kind == "truncated_cache_file":
        _cut(valid, target / valid.name, 0.5)
    elif kind == "text_as_video":
        (target / "sample_a.mp4").write_text("not a video\n", encoding="utf-8")
    elif kind == "no_clips":
        (target / "notes.txt").write_text("no clips here\n", encoding="utf-8")
    else:
        raise KeyError(kind)


def _npz(kind: str, valid: Path, target: Path) -> None:
    if kind == "zip_bomb":
        _zip_bomb(target)
    elif kind == "malicious_pickle":
        _npz_of_object(target, "test1_corpus.npy", {"a": _Exploit(target.parent / MARKER)})
    elif kind == "nan_values":
        _npz_of_object(target, "test1_corpus.npy", {"a": {"emo": float("nan")}, "b": {"emo": "happy"}})
    else:
        raise KeyError(kind)


def _json(kind: str, valid: Path, target: Path) -> None:
    if kind == "wrong_encoding":
        target.write_text(valid.read_text(encoding="utf-8"), encoding="utf-16")
    elif kind == "nan_values":
        data = json.loads(valid.read_text(encoding="utf-8"))
        _nan_numbers(data)
        target.write_text(json.dumps(data), encoding="utf-8")  # json writes NaN, which strict JSON has not
    elif kind == "not_an_object":
        target.write_text("[1, 2, 3]", encoding="utf-8")
    else:
        raise KeyError(kind)


def _nan_numbers(data: object) -> None:
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in list(items):
        if isinstance(value, float | int) and not isinstance(value, bool):
            data[key] = float("nan")
        else:
            _nan_numbers(value)


def _yaml(kind: str, valid: Path, target: Path) -> None:
    text = valid.read_text(encoding="utf-8")
    if kind == "wrong_encoding":
        target.write_text(text, encoding="utf-16")
    elif kind == "nan_values":
        target.write_text(text + "\noptimiser:\n  lr: .nan\n", encoding="utf-8")
    elif kind == "python_tag":
        target.write_text(f"seed: !!python/object/apply:os.system ['touch {target.parent / MARKER}']\n",
                          encoding="utf-8")
    elif kind == "alias_bomb":
        lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        raise KeyError(kind)


def _video(kind: str, valid: Path, target: Path) -> None:
    if kind == "text_as_video":
        target.write_text("this is not a video, only a few words of text\n", encoding="utf-8")
    elif kind == "zero_byte_video":
        target.write_bytes(b"")
    else:
        raise KeyError(kind)


def _pth(kind: str, valid: Path, target: Path) -> None:
    import torch

    if kind == "malicious_pickle":
        torch.save({"model": _Exploit(target.parent / MARKER)}, target)
    elif kind == "nan_values":
        state = torch.load(valid, map_location="cpu", weights_only=True)
        weights = state.get("model", state)
        for key in weights:
            if torch.is_floating_point(weights[key]):
                weights[key] = torch.full_like(weights[key], float("nan"))
        torch.save(state, target)
    else:
        raise KeyError(kind)


def _checkpoint(kind: str, valid: Path, target: Path) -> None:
    """Our checkpoint folder (model.safetensors + config.json), broken in one of its files."""
    if kind == "file_not_folder":
        target.write_text("not a checkpoint folder\n", encoding="utf-8")
        return
    shutil.copytree(valid, target)
    weights, config = target / "model.safetensors", target / "config.json"
    if kind == "truncated_weights":
        _cut(valid / "model.safetensors", weights, 0.5)
    elif kind == "empty_folder":
        shutil.rmtree(target)
        target.mkdir()
    elif kind == "config_random_bytes":
        config.write_bytes(_random_bytes(512))
    elif kind == "config_unknown_key":
        data = json.loads(config.read_text(encoding="utf-8"))
        data["config"]["lora_rnak"] = 16
        config.write_text(json.dumps(data), encoding="utf-8")
    elif kind == "nan_weights":
        from safetensors.torch import load_file, save_file

        tensors = {k: v.float().fill_(float("nan")) for k, v in load_file(str(weights)).items()}
        save_file(tensors, str(weights))
    else:
        raise KeyError(kind)


def _output(kind: str, valid: Path, target: Path) -> None:
    """An output path that cannot be written: `valid` names what the command writes (a file or a folder)."""
    if kind == "existing_directory":
        target.mkdir()
        (target / "keep.txt").write_text("mine\n", encoding="utf-8")
    elif kind == "existing_file":
        target.write_text("mine\n", encoding="utf-8")
    else:
        raise KeyError(kind)


def _folder(kind: str, valid: Path, target: Path) -> None:
    """A folder given where a model folder or a run folder is expected."""
    if kind == "file_not_folder":
        target.write_text("not a folder\n", encoding="utf-8")
        return
    target.mkdir()
    if kind == "damaged_model":
        (target / "model.bin").write_bytes(_random_bytes(4096))
        (target / "config.json").write_text("{}", encoding="utf-8")
    elif kind == "unrelated_files":
        (target / "notes.txt").write_text("not a run\n", encoding="utf-8")
    elif kind != "empty_folder":
        raise KeyError(kind)


UNWRITABLE = Path("/proc/self/affectgpt-matrix")  # no process, root included, can create anything here


_ROLE_MAKERS: dict[str, Callable[[str, Path, Path], None]] = {
    "table": _table, "npz": _npz, "json": _json, "yaml": _yaml, "video": _video, "pth": _pth,
    "text": _table, "checkpoint": _checkpoint, "output_file": _output, "output_folder": _output,
    "clip_folder": _clip_folder, "model_folder": _folder, "run_folder": _folder,
}

_FOLDER_ROLES = ("checkpoint", "output_file", "output_folder", "clip_folder", "model_folder", "run_folder")
_FILE_KINDS = ("random_bytes", "empty", "truncated_third", "truncated_two_thirds", "directory")
KINDS: dict[str, tuple[str, ...]] = {
    "table": (*_FILE_KINDS, "wrong_encoding", "bom", "nan_values", "huge_field", "traversal_names", "long_row",
              "unterminated_quote", "wrong_column"),
    "text": ("random_bytes", "empty", "directory", "wrong_encoding"),
    "npz": (*_FILE_KINDS, "zip_bomb", "malicious_pickle", "nan_values"),
    "json": (*_FILE_KINDS, "wrong_encoding", "nan_values", "not_an_object"),
    "yaml": (*_FILE_KINDS, "wrong_encoding", "nan_values", "python_tag", "alias_bomb"),
    "video": ("random_bytes", "truncated_third", "text_as_video", "zero_byte_video"),
    "pth": (*_FILE_KINDS, "malicious_pickle", "nan_values"),
    "checkpoint": ("truncated_weights", "empty_folder", "config_random_bytes", "config_unknown_key", "nan_weights",
                   "file_not_folder"),
    "output_file": ("existing_directory", "unwritable_place"),
    "output_folder": ("existing_file", "unwritable_place"),
    "clip_folder": ("truncated_cache_file", "text_as_video", "no_clips"),
    "model_folder": ("file_not_folder", "empty_folder", "damaged_model"),
    "run_folder": ("empty_folder", "unrelated_files"),
}


def make(kind: str, role: str, valid: Path, folder: Path) -> Path:
    """Write the `kind` variant of the valid file (or folder) `valid` into `folder`; returns its path, whose name
    keeps `valid`'s suffix so commands take it for the same kind of file."""
    if kind == "unwritable_place":
        return UNWRITABLE / f"hostile-{kind}{valid.suffix}"
    target = folder / f"hostile-{kind}{valid.suffix}"
    if role in _FOLDER_ROLES or not _common(kind, valid, target):
        _ROLE_MAKERS[role](kind, valid, target)
    return target
