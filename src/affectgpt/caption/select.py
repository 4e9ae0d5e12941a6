"""Clue-model selection with a human prior: rank candidate clue backends, alone and in audio+visual pairs, by the
fine-grained (emotion-wheel) metric of their descriptions against a small human-labelled set (paper, sec. 2.1).

Selection scores exactly what `affectgpt caption run` would produce: each labelled clip goes through the probe
stage once (into a temporary folder), and each candidate is the run's own acoustic stage (`role: audio`: the
audio only) or visual stage (`role: visual`: faces or frames only) with the candidate as its config section, so
the instruction, the inputs sent and the subtitle rule are the stage's. Each single candidate and each (audio,
visual) pair then becomes a description per clip through the offline template merger
(caption.stages.template_merge; a missing clue reads as nothing), the OV labels are extracted with the lexicon
extractor (MER-UniBench's offline extraction), and the labels are scored as OV-MERD+ is: an `-openset` file
scored by bench.score.score_dataset (emotion-wheel F/P/R, bench.metrics.wheel_fpr, averaged over the wheels).
The ranking is by F, then P, then R (higher first), then by name.

Candidates file (YAML): `candidates: [{name, role: audio|visual, backend, options: {...}, <stage keys>}]` (or the
bare list): `backend` and `options` as in a caption config's acoustic/visual section (perception, openai,
transformers, affectgpt), plus any other key of that section (prompt, prompt_file, with_subtitle, input). Labels
file: CSV `name, openset` (the released list-like string). A clip the backend fails on (the stage drops it with
`backend_error: ...`) or the probe cannot read gets no clue from that candidate (counted in `failed`), so a flaky
backend scores lower instead of stopping the selection.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

ROLES = ("audio", "visual")
CLUE_FIELD = {"audio": "acoustic_clues", "visual": "visual_clues"}
STAGE_KEYS = ("prompt", "prompt_file", "with_subtitle", "input", "n_frames", "size")


@dataclass(frozen=True)
class Candidate:
    """One clue backend to try: its id, role (audio or visual), backend name and options, other stage keys."""

    name: str
    backend: str
    role: str
    options: dict[str, Any] = field(default_factory=dict)
    stage: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The acoustic or visual stage's config section this candidate stands for."""
        return {"backend": self.backend, "options": dict(self.options), **self.stage}


def load_candidates(path: str | Path) -> list[Candidate]:
    """The candidates of a YAML file (see the module docstring); InputError naming the bad entry."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("candidates file not found", path=path, fix="check the path") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the candidates file ({exc})", path=path,
                         fix="write YAML: candidates: [{name, role, backend, options}]") from exc
    return parse_candidates(data.get("candidates") if isinstance(data, dict) else data, source=path)


def parse_candidates(items: Any, *, source: str | Path | None = None) -> list[Candidate]:
    """Candidates from a list of mappings; names unique, roles audio or visual, backends known to the stages."""
    from affectgpt.caption.stages.clues import backend_name

    if not isinstance(items, list) or not items:
        raise InputError("no candidates", path=source, field="candidates",
                         fix="list candidates: [{name, role: audio|visual, backend, options}]")
    out: list[Candidate] = []
    for i, item in enumerate(items):
        where = f"candidates[{i}]"
        if not isinstance(item, dict) or not item.get("backend"):
            raise InputError("not a mapping with a backend", path=source, field=where,
                             fix="give each candidate a backend (perception, openai, transformers) and a role")
        role = item.get("role")
        if role not in ROLES:
            raise InputError(f"role {role!r} is not audio or visual", path=source, field=f"{where}.role",
                             fix="set role: audio (acoustic clues) or role: visual (visual clues)")
        options = item.get("options") or {}
        if not isinstance(options, dict):
            raise InputError("options is not a mapping", path=source, field=f"{where}.options",
                             fix="write the backend's options as key: value pairs")
        unknown = sorted(set(item) - {"name", "role", "backend", "options", *STAGE_KEYS})
        if unknown:
            raise InputError(f"unknown key {unknown[0]!r}", path=source, field=where,
                             fix=f"use name, role, backend, options and the stage's keys ({', '.join(STAGE_KEYS)})")
        try:
            backend_name("acoustic" if role == "audio" else "visual", {"backend": str(item["backend"])})
        except InputError as exc:
            raise InputError(exc.what, path=source, field=f"{where}.backend", fix=exc.fix) from exc
        name = str(item.get("name") or f"{item['backend']}-{role}-{i}")
        if any(c.name == name for c in out):
            raise InputError(f"two candidates named {name!r}", path=source, field=f"{where}.name",
                             fix="give every candidate a unique name")
        out.append(Candidate(name, str(item["backend"]), role, dict(options),
                             {k: item[k] for k in STAGE_KEYS if k in item}))
    return out


def read_labelled(clips: str | Path, labels: str | Path) -> list[tuple[str, Path]]:
    """(name, video file) of every labelled clip, in the labels file's order; InputError for a missing clip."""
    from affectgpt.bench.datasets import DATASETS
    from affectgpt.bench.inputs import load_ground_truth
    from affectgpt.media.files import VIDEO_SUFFIXES, find_by_name

    gt = load_ground_truth(labels, DATASETS["ovmerdplus"])
    found, missing = [], []
    for name in gt:
        video = find_by_name(clips, name, VIDEO_SUFFIXES)
        if video is None:
            missing.append(name)
        else:
            found.append((name, video))
    if missing:
        raise InputError(f"{len(missing)} labelled clips have no video in the folder ({', '.join(missing[:5])})",
                         path=clips, field="--clips", fix="put <name>.mp4 for every labelled name in --clips")
    return found


def probe_clips(clips: Sequence[tuple[str, Path]], output: Path, subtitles: Mapping[str, str] | None = None
                ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(name -> the fields after the probe and a given subtitle, name -> why the probe dropped it)."""
    from affectgpt.caption.base import StageContext
    from affectgpt.caption.stages.probe import Probe, source_fields

    probe, context = Probe(), StageContext(config={}, output=output)
    fields, dropped = {}, {}
    for name, video in clips:
        start = {"name": name, **source_fields(video)}
        result = probe(start, context)
        if result.dropped is not None:
            dropped[name] = result.dropped
            continue
        english = (subtitles or {}).get(name, "")
        fields[name] = {**start, **result.fields, "subtitle": {
            "chinese": "", "english": english, "text": english, "source": "given" if english else "none"}}
    return fields, dropped


def generate_clues(candidate: Candidate, fields: Mapping[str, Mapping[str, Any]], output: Path
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """(name -> clue text, name -> why there is none) of one candidate: the run's acoustic or visual stage with
    the candidate as its config, on every probed clip."""
    from affectgpt.caption.base import StageContext
    from affectgpt.caption.stages.acoustic import Acoustic
    from affectgpt.caption.stages.visual import Visual

    stage = Acoustic() if candidate.role == "audio" else Visual()
    context = StageContext(config=candidate.config(), output=output)  # one context: the backend is built once
    clues, errors = {}, {}
    for name, clip in fields.items():
        result = stage(clip, context)
        if result.dropped is not None:
            errors[name] = result.dropped
        else:
            clues[name] = str(result.fields[CLUE_FIELD[candidate.role]])
    return clues, errors


def default_merge(fields: Mapping[str, Any]) -> str:
    """The offline template merger of the run (caption.stages.template_merge) on one clip's clues."""
    from affectgpt.caption.stages.template_merge import merge_description

    subtitle = fields.get("subtitle") or {}
    return merge_description(str(fields.get("acoustic_clues") or ""), str(fields.get("visual_clues") or ""),
                             str(subtitle.get("english") or subtitle.get("text") or ""))


def select(candidates: Sequence[Candidate], clips: str | Path, labels: str | Path, *, protocol: str = "auto",
           wheel_dir: str | Path | None = None, merge: Callable[[Mapping[str, Any]], str] | None = None,
           subtitles: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Rank `candidates` alone and in (audio, visual) pairs on the labelled clips (see the module docstring).

    Args:
        candidates: the clue backends (load_candidates / parse_candidates).
        clips: the folder holding <name>.<video suffix> for every labelled name.
        labels: CSV name, openset (OV labels).
        protocol, wheel_dir: the scoring protocol (bench.protocol.resolve_protocol).
        merge: fields {"acoustic_clues", "visual_clues", "subtitle"} -> description (default_merge).
        subtitles: name -> English subtitle (the clue stages' `with_subtitle` and the merge read it).

    Returns:
        {"protocol", "protocol_note", "clips", "candidates", "errors", "ranking": [{"rank", "name", "members",
        "kind", "f", "p", "r", "failed", "labels_per_sample"}]} (JSON-able).
    """
    from affectgpt.bench.datasets import DATASETS
    from affectgpt.bench.protocol import resolve_protocol
    from affectgpt.bench.score import score_dataset
    from affectgpt.extract.lexicon_extractor import LexiconExtractor

    chosen = resolve_protocol(protocol, wheel_dir)
    labelled = read_labelled(clips, labels)
    merge = merge or default_merge
    names = [n for n, _ in labelled]
    sets = [(c,) for c in candidates] + [
        (a, v) for a, v in itertools.product(candidates, candidates) if a.role == "audio" and v.role == "visual"]
    extractor = LexiconExtractor()
    rows = []
    with tempfile.TemporaryDirectory(prefix="caption-select-") as tmp:
        fields, unreadable = probe_clips(labelled, Path(tmp) / "out", subtitles)
        clues = {c.name: generate_clues(c, fields, Path(tmp) / "out") for c in candidates}
        for members in sets:
            descriptions = [merge(_fields(name, members, clues, subtitles)) for name in names]
            answers = [r.answer for r in extractor.labels(descriptions)]
            path = Path(tmp) / f"{len(rows)}-openset.csv"
            _write_predictions(path, names, answers)
            epoch = score_dataset(DATASETS["ovmerdplus"], path, labels, chosen).epochs[0]
            failed = set(unreadable) | {n for m in members for n in clues[m.name][1]}
            rows.append({"name": "+".join(m.name for m in members), "members": [m.name for m in members],
                         "kind": "single" if len(members) == 1 else "pair",
                         **{k: epoch.metrics[k] for k in ("f", "p", "r")}, "failed": len(failed),
                         "labels_per_sample": epoch.diagnostics.get("labels_per_sample", 0.0)})
    rows.sort(key=lambda r: (-r["f"], -r["p"], -r["r"], r["name"]))
    errors = {c: dict(sorted(e.items())) for c, (_, e) in clues.items() if e}
    if unreadable:
        errors["probe"] = dict(sorted(unreadable.items()))
    return {"protocol": chosen.maps.protocol, "protocol_note": chosen.note, "clips": len(labelled),
            "candidates": [{"name": c.name, "backend": c.backend, "role": c.role} for c in candidates],
            "errors": errors, "ranking": [{"rank": i, **r} for i, r in enumerate(rows, start=1)]}


def _fields(name: str, members: Sequence[Candidate], clues: Mapping[str, tuple[dict[str, str], dict[str, str]]],
            subtitles: Mapping[str, str] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"acoustic_clues": "", "visual_clues": ""}
    for member in members:
        fields[CLUE_FIELD[member.role]] = clues[member.name][0].get(name, "")
    english = (subtitles or {}).get(name, "")
    fields["subtitle"] = {"chinese": "", "english": english, "text": english, "source": "given" if english else "none"}
    return fields


def _write_predictions(path: Path, names: Sequence[str], answers: Sequence[str]) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["name", "openset"])
        writer.writerows(zip(names, answers, strict=True))


def format_ranking(result: Mapping[str, Any]) -> str:
    """The ranking as a plain-text table (what `affectgpt caption select` prints)."""
    lines = [f"protocol: {result['protocol']} ({result['clips']} labelled clips)",
             f"{'rank':>4}  {'F':>6} {'P':>6} {'R':>6}  {'failed':>6}  candidates"]
    for row in result["ranking"]:
        lines.append(f"{row['rank']:>4}  {row['f']:6.3f} {row['p']:6.3f} {row['r']:6.3f}  {row['failed']:>6}  "
                     f"{row['name']}")
    return "\n".join(lines)


def select_command(candidates: str | Path, clips: str | Path, labels: str | Path, *, output: str | Path | None = None,
                   protocol: str = "auto", wheel_dir: str | Path | None = None,
                   subtitles: str | Path | None = None) -> dict[str, Any]:
    """The `affectgpt caption select` command without printing: read the files, rank, write `output` (JSON,
    atomically) when given, return the result (the CLI prints format_ranking(result))."""
    import json

    from affectgpt.io.atomic import write_text

    table = None
    if subtitles is not None:
        from affectgpt.media.subtitles import read_subtitle_table

        table = read_subtitle_table(subtitles, column="english")
    result = select(load_candidates(candidates), clips, labels, protocol=protocol, wheel_dir=wheel_dir,
                    subtitles=table)
    if output is not None:
        write_text(output, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result
