"""MERBench-style classifiers on synthetic feature files (the features format; the label is a known function of
the features): high held-out accuracy, bit-identical weights for one seed, InputErrors for bad inputs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save

from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.train.classifiers import load_classifier, load_feature_set, read_vectors, train_classifier

CLASSES = ("angry", "happy", "sad")
META = {"format": "affectgpt-features/1", "visual_encoder": "tiny-clip", "audio_encoder": "tiny-hubert",
        "visual_dim": "16", "audio_dim": "12", "encoder_dtype": "float32", "visual_input": "face",
        "hubert_normalization": "sample", "n_steps": "8"}


def write_dataset(folder: Path, n_per_class: int = 30, seed: int = 0, text: bool = True) -> Path:
    """Feature files whose emotion is the class whose visual prototype the frames scatter around (audio is
    noise; the text vector also carries the class), and labels.csv (name, emotion, sentiment)."""
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(99).normal(0, 1, (len(CLASSES), 16)).astype(np.float32) * 2
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["name,emotion,sentiment"]
    for k, cls in enumerate(CLASSES):
        for i in range(n_per_class):
            name = f"{cls}{i:03d}"
            tensors = {"visual": torch.from_numpy(protos[k] + rng.normal(0, 1, (8, 16)).astype(np.float32)),
                       "audio": torch.from_numpy(rng.normal(0, 1, (8, 12)).astype(np.float32))}
            if text:
                tensors["text"] = torch.from_numpy(protos[k][:5] + rng.normal(0, 0.5, 5).astype(np.float32))
            (folder / f"{name}.safetensors").write_bytes(save(tensors, metadata={**META, "name": name}))
            rows.append(f"{name},{cls},{'positive' if cls == 'happy' else 'negative'}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder / "labels.csv"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("features")
    return folder, write_dataset(folder)


def test_training_reaches_high_held_out_accuracy_and_records_its_config(dataset, tmp_path):
    features, labels = dataset
    data = load_feature_set(features, labels, "emotion", ["audio", "visual"])
    config = train_classifier(data, "emotion", tmp_path / "clf", seed=3)
    assert config["held_out"]["accuracy"] >= 0.9
    saved = json.loads((tmp_path / "clf" / "classifier.json").read_text())
    assert saved["seed"] == 3 and saved["modalities"] == ["audio", "visual"] and saved["classes"] == list(CLASSES)
    assert saved["feature_spec"]["dims"] == {"audio": 12, "visual": 16}
    assert saved["feature_spec"]["visual_encoder"] == "tiny-clip"
    assert saved["samples"]["held_out"] == 18  # 20% of 30 per class
    clf = load_classifier(tmp_path / "clf")
    vectors, _ = read_vectors(features, "happy000", clf.modalities)
    probs = clf.proba(vectors)
    assert probs.shape == (1, 3) and abs(probs.sum() - 1) < 1e-5


def test_same_seed_same_weights_other_seed_other_weights(dataset, tmp_path):
    features, labels = dataset
    data = load_feature_set(features, labels, "sentiment", ["visual"])
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        train_classifier(data, "sentiment", tmp_path / name, seed=seed, epochs=5)
    weights = {n: (tmp_path / n / "model.safetensors").read_bytes() for n in "abc"}
    assert weights["a"] == weights["b"] != weights["c"]


def test_modality_subsets(dataset, tmp_path):
    features, labels = dataset
    for modalities in (["text"], ["audio", "visual", "text"]):
        data = load_feature_set(features, labels, "emotion", modalities)
        config = train_classifier(data, "emotion", tmp_path / "-".join(modalities), seed=0)
        assert config["held_out"]["accuracy"] >= 0.9, modalities


def test_bad_inputs_are_input_errors(dataset, tmp_path):
    features, labels = dataset
    with pytest.raises(InputError, match="unknown task"):
        load_feature_set(features, labels, "arousal", ["visual"])
    with pytest.raises(InputError, match="feature folder not found"):
        load_feature_set(tmp_path / "none", labels, "emotion", ["visual"])
    no_text = tmp_path / "no-text"
    write_dataset(no_text, n_per_class=2, text=False)
    with pytest.raises(InputError, match="no 'text' tensor"):
        load_feature_set(no_text, no_text / "labels.csv", "emotion", ["text"])
    one = tmp_path / "one.csv"
    one.write_text("name,emotion\nhappy000,happy\nhappy001,happy\n")
    with pytest.raises(InputError, match="one class"):
        train_classifier(load_feature_set(features, one, "emotion", ["visual"]), "emotion", tmp_path / "x")
    other = tmp_path / "other.csv"
    other.write_text("name,valence\nhappy000,1\n")
    with pytest.raises(InputError, match="emotion"):
        load_feature_set(features, other, "emotion", ["visual"])
    nobody = tmp_path / "nobody.csv"
    nobody.write_text("name,emotion\nghost1,happy\n")
    with pytest.raises(InputError, match="no labelled sample has a feature file"):
        load_feature_set(features, nobody, "emotion", ["visual"])
    with pytest.raises(InputError, match="not a classifier checkpoint"):
        load_classifier(tmp_path)


def test_cli_trains_and_reports(dataset, tmp_path, capsys):
    features, labels = dataset
    out = tmp_path / "ckpt"
    assert main(["classifiers", "train", "--features", str(features), "--labels", str(labels), "--task", "emotion",
                 "--output", str(out), "--seed", "2", "--modalities", "visual"]) == 0
    line = capsys.readouterr().out
    assert "held-out accuracy" in line and (out / "model.safetensors").is_file()
    assert main(["classifiers", "train", "--features", str(features), "--labels", str(labels), "--task", "emotion",
                 "--output", str(out), "--modalities", "text", "--epochs", "0"]) == 2
