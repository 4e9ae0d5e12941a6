"""Train, save and load the MERBench-style emotion/sentiment classifiers of the caption vote (CPU, seconds).

Data: a feature folder of `affectgpt features extract` (`<name>.safetensors`: `visual` [8, dv], `audio` [8, da];
a file may also hold `text` [k, dt] or [dt], which the extraction does not write) and a labels table (CSV/JSONL
with `name` and a column named after the task, `emotion` or `sentiment`, or `label`). Each modality's tensor is
averaged over its steps into one vector, standardised with the training fold's mean and std (stored with the
weights). Every file must come from one extraction (the same encoders, dtype and visual input: data.features
SAME_RUN_KEYS); labelled names without a feature file are skipped and counted.

Training (`train_classifier`): a stratified held-out fold (`holdout` of each class, at least one where a class
has two samples or more), AdamW, mini-batches, at most `epochs` epochs; after each epoch the held-out accuracy
(ties: the lower held-out loss) decides the best weights, and `patience` epochs without a better one stop it.
Everything random draws from `seed` (the split, the initial weights, the batch order, dropout), on CPU, so the
same seed gives the same weights bit for bit.

A checkpoint is a folder: `model.safetensors` (weights and the standardisation, loaded with safetensors: no
pickle) and `classifier.json` (format, task, classes, modalities, seed, hyper-parameters, the feature spec and
the held-out score).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError

FORMAT = "affectgpt-classifier/1"
WEIGHTS, CONFIG = "model.safetensors", "classifier.json"
TASKS = ("emotion", "sentiment")
DEFAULTS = {"hidden": 64, "dropout": 0.1, "epochs": 60, "patience": 8, "lr": 3e-3, "weight_decay": 1e-2,
            "batch_size": 32, "holdout": 0.2}


@dataclass
class FeatureSet:
    """Vectors of the labelled samples: `vectors[m]` [N, d_m] float32, `labels` (N strings), the feature spec."""

    names: list[str]
    vectors: dict[str, np.ndarray]
    labels: list[str]
    spec: dict[str, Any]
    missing: list[str]


def read_vectors(folder: str | Path, name: str, modalities: Sequence[str]) -> tuple[dict[str, np.ndarray],
                                                                                      dict[str, str]]:
    """One feature file's modality vectors (mean over the steps) and its metadata; InputError when the file is
    missing, unreadable, of another format, or lacks a modality."""
    from safetensors import safe_open

    from affectgpt.data.features import FEATURE_FORMAT, feature_file, read_feature_metadata

    meta = read_feature_metadata(folder, name)
    path = feature_file(folder, name)
    if meta.get("format") != FEATURE_FORMAT:
        raise InputError(f"unknown feature file format {meta.get('format')!r}", path=path, field="format",
                         fix="extract the features again with `affectgpt features extract`")
    out = {}
    try:
        with safe_open(str(path), framework="numpy") as handle:
            keys = set(handle.keys())
            for modality in modalities:
                if modality not in keys:
                    raise InputError(f"the feature file has no {modality!r} tensor (it has {sorted(keys)})",
                                     path=path, field=modality, fix="choose --modalities the files hold")
                array = np.asarray(handle.get_tensor(modality), dtype=np.float32)
                out[modality] = array.reshape(-1, array.shape[-1]).mean(axis=0) if array.ndim else array
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"not a readable feature file ({exc})", path=path,
                         fix="delete it and extract the features again") from exc
    for modality, vector in out.items():
        if vector.ndim != 1 or not np.isfinite(vector).all():
            raise InputError(f"the {modality!r} features are not a finite vector", path=path, field=modality,
                             fix="extract the features again")
    return out, meta


def load_feature_set(features: str | Path, labels: str | Path, task: str, modalities: Sequence[str]) -> FeatureSet:
    """The labelled samples that have a feature file (see the module docstring)."""
    from affectgpt.data.features import SAME_RUN_KEYS, feature_file
    from affectgpt.io.tables import read_table

    if task not in TASKS:
        raise InputError(f"unknown task {task!r}", field="--task", fix=f"choose one of {', '.join(TASKS)}")
    if not Path(features).is_dir():
        raise InputError("feature folder not found", path=features, field="--features",
                         fix="run `affectgpt features extract` first")
    table = read_table(labels, (task, "label"), missing_fix=f"give a `name` column and a `{task}` column")
    names, vectors, values, missing, spec = [], [], [], [], None
    for name, value in zip(table.names, table.values, strict=True):
        label = str(value or "").strip().lower()
        if not label:
            raise InputError(f"sample {name!r} has an empty label", path=labels, field=task, fix="label every row")
        if not feature_file(features, name).is_file():
            missing.append(name)
            continue
        found, meta = read_vectors(features, name, modalities)
        run = {k: meta.get(k) for k in SAME_RUN_KEYS}
        if spec is None:
            spec = run
        elif run != spec:
            raise InputError(f"sample {name!r} was extracted otherwise than the first ({run} vs {spec})",
                             path=feature_file(features, name), fix="extract all features in one run")
        names.append(name)
        vectors.append(found)
        values.append(label)
    if not names:
        raise InputError("no labelled sample has a feature file", path=features, field="--features",
                         fix="check that the label names are the feature file names")
    stacked = {m: np.stack([v[m] for v in vectors]) for m in modalities}
    spec = {**(spec or {}), "dims": {m: int(a.shape[1]) for m, a in stacked.items()}, "pooling": "mean"}
    return FeatureSet(names, stacked, values, spec, missing)


def split(labels: Sequence[str], holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, held-out) indices; a class with 2+ samples gives at least one to each side."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for cls in sorted(set(labels)):
        idx = rng.permutation([i for i, y in enumerate(labels) if y == cls])
        k = round(holdout * len(idx))
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        held.extend(idx[:k].tolist())
        train.extend(idx[k:].tolist())
    return np.array(sorted(train)), np.array(sorted(held))


def train_classifier(data: FeatureSet, task: str, output: str | Path, *, seed: int = 0,
                     **options: Any) -> dict[str, Any]:
    """Train on `data`, write the checkpoint folder `output`, return its config (see the module docstring)."""
    import torch

    from affectgpt.model.emotion_classifier import AttentionFusionClassifier

    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise InputError(f"unknown training option {unknown[0]!r}", field=unknown[0], fix=f"known: {sorted(DEFAULTS)}")
    hp = {**DEFAULTS, **options}
    if not 0 < float(hp["holdout"]) < 1 or int(hp["epochs"]) < 1:
        raise InputError("holdout must lie in (0, 1) and epochs be >= 1", field="holdout")
    classes = sorted(set(data.labels))
    if len(classes) < 2:
        raise InputError(f"the labels hold one class only ({classes})", field=task, fix="give two classes or more")
    y = np.array([classes.index(v) for v in data.labels])
    train_idx, held_idx = split(data.labels, float(hp["holdout"]), seed)
    if len(held_idx) == 0 or len(train_idx) < 2:
        raise InputError(f"too few labelled samples with features ({len(y)}) for a held-out fold", field="--labels",
                         fix="give at least two samples of some class")
    modalities = list(data.vectors)
    mean = {m: data.vectors[m][train_idx].mean(axis=0) for m in modalities}
    std = {m: data.vectors[m][train_idx].std(axis=0) + 1e-6 for m in modalities}
    x = {m: torch.from_numpy((data.vectors[m] - mean[m]) / std[m]).float() for m in modalities}
    target = torch.from_numpy(y).long()
    torch.manual_seed(seed)
    model = AttentionFusionClassifier(data.spec["dims"], len(classes), int(hp["hidden"]), float(hp["dropout"]))
    optimiser = torch.optim.AdamW(model.parameters(), lr=float(hp["lr"]), weight_decay=float(hp["weight_decay"]))
    order = torch.Generator().manual_seed(seed)
    tr, he = torch.from_numpy(train_idx), torch.from_numpy(held_idx)
    best, best_state, since, epochs_run = (-1.0, float("inf")), None, 0, 0
    for _epoch in range(int(hp["epochs"])):
        epochs_run += 1
        model.train()
        perm = tr[torch.randperm(len(tr), generator=order)]
        for start in range(0, len(perm), int(hp["batch_size"])):
            batch = perm[start:start + int(hp["batch_size"])]
            loss = torch.nn.functional.cross_entropy(model({m: x[m][batch] for m in modalities}), target[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            logits = model({m: x[m][he] for m in modalities})
            score = (float((logits.argmax(1) == target[he]).float().mean()),
                     float(torch.nn.functional.cross_entropy(logits, target[he])))
        if score[0] > best[0] or (score[0] == best[0] and score[1] < best[1]):
            best, since = score, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= int(hp["patience"]):
                break
    config = {"format": FORMAT, "task": task, "classes": classes, "modalities": modalities, "seed": seed,
              "hyperparameters": hp, "feature_spec": data.spec,
              "samples": {"train": len(train_idx), "held_out": len(held_idx), "skipped_no_features": len(data.missing)},
              "held_out": {"accuracy": round(best[0], 6), "loss": round(best[1], 6)}, "epochs_run": epochs_run}
    save(best_state, mean, std, config, output)
    return config


def save(state: Mapping[str, Any], mean: Mapping[str, np.ndarray], std: Mapping[str, np.ndarray],
         config: Mapping[str, Any], output: str | Path) -> Path:
    """Write `output/model.safetensors` and `output/classifier.json` (atomically, each)."""
    import torch
    from safetensors.torch import save as to_bytes

    from affectgpt.io.atomic import write_bytes, write_text

    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError("the checkpoint path is a file", path=out, field="--output", fix="give a folder path")
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.contiguous() for k, v in state.items()}
    for m in mean:
        tensors[f"norm.{m}.mean"] = torch.from_numpy(np.ascontiguousarray(mean[m], np.float32))
        tensors[f"norm.{m}.std"] = torch.from_numpy(np.ascontiguousarray(std[m], np.float32))
    write_bytes(out / WEIGHTS, to_bytes(tensors, metadata={"format": FORMAT}))
    write_text(out / CONFIG, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return out


class TrainedClassifier:
    """A loaded checkpoint: `proba(vectors)` -> class probabilities; `config`, `classes`, `modalities`, `task`."""

    def __init__(self, path: str | Path) -> None:
        import torch
        from safetensors.torch import load_file

        from affectgpt.model.emotion_classifier import AttentionFusionClassifier

        path = Path(path)
        try:
            self.config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
            tensors = load_file(str(path / WEIGHTS))
        except (OSError, ValueError) as exc:
            raise InputError(f"not a classifier checkpoint ({exc})", path=path,
                             fix="give a folder written by `affectgpt classifiers train`") from exc
        if self.config.get("format") != FORMAT:
            raise InputError(f"unknown classifier format {self.config.get('format')!r}", path=path,
                             fix="train the classifier again")
        self.path, self.task = path, str(self.config["task"])
        self.classes, self.modalities = list(self.config["classes"]), list(self.config["modalities"])
        hp = self.config["hyperparameters"]
        self.model = AttentionFusionClassifier(self.config["feature_spec"]["dims"], len(self.classes),
                                               int(hp["hidden"]), float(hp["dropout"]))
        try:
            self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        except RuntimeError as exc:
            raise InputError(f"the weights do not fit the config ({exc})", path=path / WEIGHTS,
                             fix="train the classifier again") from exc
        self.model.eval()
        self.norm = {m: (tensors[f"norm.{m}.mean"].numpy(), tensors[f"norm.{m}.std"].numpy())
                     for m in self.modalities}
        self._torch = torch

    def proba(self, vectors: Mapping[str, np.ndarray]) -> np.ndarray:
        """modality -> [B, d] (or [d]) vectors -> [B, classes] probabilities."""
        torch = self._torch
        x = {m: torch.from_numpy(((np.atleast_2d(np.asarray(vectors[m], np.float32)) - mu) / sd).astype(np.float32))
             for m, (mu, sd) in self.norm.items()}
        with torch.no_grad():
            return torch.softmax(self.model(x), dim=1).numpy().astype(np.float64)

    def check_features(self, meta: Mapping[str, str], path: str | Path) -> None:
        """InputError when a feature file was made with other encoders or visual input than the training data."""
        from affectgpt.data.features import same_encoder

        spec = self.config["feature_spec"]
        for key in ("visual_encoder", "audio_encoder", "visual_input"):
            want, got = spec.get(key), meta.get(key)
            if want and got and not (same_encoder(want, got) if key.endswith("encoder") else want == got):
                raise InputError(f"features made with {key} {got!r}, the classifier was trained on {want!r}",
                                 path=path, field=key, fix="extract the features as for the training data")


def load_classifier(path: str | Path) -> TrainedClassifier:
    """A checkpoint folder written by train_classifier."""
    return TrainedClassifier(path)
