"""Every registration table: each entry resolves and builds or loads something real at tiny sizes, and a name one
letter away from a real one is an InputError that names the table's kind and the real name.

The entries are read from the tables at collection time (ids = entry names), so a new entry is tested without new
code. Where an entry needs inputs of its own (an encoder's tiny transformers config, a backend's server), the
recipe tables below hold them, and an entry without a recipe fails and says so.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from affectgpt.errors import InputError, MissingExtra
from affectgpt.model.config import ModelConfig

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = "He looks very happy and excited."


def table(module: str, attr: str) -> Any:
    return getattr(importlib.import_module(f"affectgpt.{module}"), attr)


@dataclass(frozen=True)
class Table:
    """One registration table: where it lives, how a name is looked up in it, what its errors call an entry."""

    kind: str
    where: tuple[str, str]  # (module under affectgpt, attribute)
    lookup: str | Callable[[str], Any] | None = None  # a function of that module, a callable; None: Registry.get

    def names(self) -> list[str]:
        found = table(*self.where)
        return list(found.names() if hasattr(found, "names") else found)

    def find(self, name: str) -> Any:
        if self.lookup is None:
            return table(*self.where).get(name)
        return (table(self.where[0], self.lookup) if isinstance(self.lookup, str) else self.lookup)(name)


def _pool(name: str) -> Any:
    return table("model.pooling", "build_pooler")(name, 8, ModelConfig(), 1, 8)


TABLES: dict[str, Table] = {
    "encoders": Table("encoder", ("model.encoders", "ENCODERS")),
    "poolers": Table("pooling", ("model.pooling", "POOLERS"), _pool),
    # a fusion name is checked when the ModelConfig is made, before build_fusion could see it
    "fusions": Table("fusion", ("model.fusion", "FUSIONS"), lambda n: ModelConfig(fusion=n)),
    "presets": Table("model config", ("model.config", "PRESETS"), "get_preset"),
    "llm backends": Table("llm backend", ("llm", "BACKENDS")),
    "extractors": Table("extraction backend", ("extract", "EXTRACTORS")),
    "face detectors": Table("face detector", ("media.faces", "DETECTORS")),
    "datasets": Table("dataset", ("bench.datasets", "DATASETS"), "get_dataset"),
    "label sources": Table("dataset", ("formats.labels", "LABEL_SOURCES"), "label_source"),
    "protocols": Table("protocol", ("bench.protocol", "PROTOCOLS"), "resolve_protocol"),
    "wheel versions": Table("wheel version", ("lexicon.fetch", "RELEASES"), "get_release"),
    "model sources": Table("base.init", ("infer.sources", "MODEL_SOURCES")),
    "known weights": Table("known model", ("model.known", "KNOWN"), "get_known"),
    "perceivers": Table("perceiver", ("perception.pipeline", "PERCEIVERS")),
}


def optional_package(exc: ModuleNotFoundError | MissingExtra) -> str:
    """The optional package (torch...) whose absence `exc` reports; an import error of our own is re-raised."""
    missing = str(getattr(exc, "name", None) or getattr(exc, "package", ""))
    if missing.startswith("affectgpt"):
        raise exc
    return missing


def entries(which: str) -> list[Any]:
    """The entry names of TABLES[which], read at collection for parametrize (one skipped param where the table's
    module needs an optional package that is not installed)."""
    try:
        return TABLES[which].names()
    except (ModuleNotFoundError, MissingExtra) as exc:
        return [pytest.param("", marks=pytest.mark.skip(reason=f"the {which} table needs {optional_package(exc)}"))]


def recipe(recipes: dict[str, Any], kind: str, name: str) -> Any:
    if name not in recipes:
        pytest.fail(f"no tiny recipe for the {kind} {name!r}: add one to this file's table of them")
    return recipes[name]


@pytest.fixture(scope="session")
def tiny_cfg() -> ModelConfig:
    """configs/tiny-cpu.yaml's model, with the widths of its tiny encoders and LLM and a small Q-Former."""
    from affectgpt.config import load_config
    from affectgpt.train.config import TrainConfig

    cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", TrainConfig).model_config
    visual, audio = cfg.visual_config["projection_dim"], cfg.audio_config["hidden_size"]
    return replace(cfg, visual_dim=visual, audio_dim=audio, fusion_dim=max(visual, audio),
                   llm_dim=cfg.llm_config["hidden_size"], qformer_hidden=32, qformer_heads=4, qformer_intermediate=64,
                   video_tokens=2, audio_tokens=3, multi_tokens=2)


# ---- model parts: poolers, fusions, presets, encoders ----

@pytest.mark.parametrize("name", entries("poolers"))
def test_every_pooler_builds_and_pools(name: str, tiny_cfg: ModelConfig) -> None:
    import torch

    from affectgpt.model.pooling import POOLERS, build_pooler

    cfg = replace(tiny_cfg, video_pooling=name, audio_pooling=name)  # the config accepts the entry
    for d, n_tokens, positions in ((cfg.visual_dim, cfg.video_tokens, cfg.video_positions),
                                   (cfg.audio_dim, cfg.audio_tokens, cfg.audio_positions)):
        pooler = build_pooler(name, d, cfg, n_tokens, positions)
        assert isinstance(pooler, POOLERS[name])
        assert pooler(torch.randn(2, 5, d)).tokens.shape == (2, n_tokens, cfg.llm_dim)


@pytest.mark.parametrize("name", entries("fusions"))
def test_every_fusion_builds_and_fuses(name: str, tiny_cfg: ModelConfig) -> None:
    import torch

    from affectgpt.model.fusion import FUSIONS, build_fusion

    cfg = replace(tiny_cfg, fusion=name)
    fusion = build_fusion(cfg)
    assert isinstance(fusion, FUSIONS[name])
    out = fusion(torch.randn(2, 4, cfg.visual_dim), torch.randn(2, 3, cfg.audio_dim))
    if cfg.uses_multi:
        assert out.tokens.shape == (2, cfg.multi_tokens, cfg.llm_dim)
    else:  # "none": no multi tokens at all
        assert out is None


def test_model_config_accepts_exactly_the_pooler_and_fusion_tables() -> None:
    from affectgpt.model import config

    assert set(config.POOLINGS) == set(table("model.pooling", "POOLERS"))
    assert set(config.FUSIONS) == set(table("model.fusion", "FUSIONS"))


@pytest.mark.parametrize("name", entries("presets"))
def test_every_preset_is_a_valid_config_counted_on_the_meta_device(name: str) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from affectgpt.model.config import get_preset
    from affectgpt.model.encoders import ENCODERS
    from affectgpt.model.summary import summarize

    cfg = get_preset(name)
    assert isinstance(cfg, ModelConfig) and ModelConfig.from_json(cfg.to_json()) == cfg
    assert {cfg.visual_kind, cfg.audio_kind} <= set(ENCODERS.names())
    counts = summarize(cfg)  # the full-size architecture, built on the meta device: nothing is allocated
    parts = ("lora", "fusion", "llm", "visual_encoder", "audio_encoder")
    assert all(counts[p] > 0 for p in parts if p != "lora"), counts
    assert (counts["lora"] > 0) == (cfg.lora_r > 0)
    assert counts["trainable"] == counts["lora"] + counts["fusion"]
    assert counts["total"] == sum(counts[p] for p in parts)


# encoder -> (the ModelConfig field with its tiny transformers config, the config key of its width,
#             the encoders.py preprocessor it ships with, a tiny input batch [B=1, T=2, ...])
ENCODER_RECIPES: dict[str, tuple[str, str, str, Callable[[Any], Any]]] = {
    "clip": ("visual_config", "projection_dim", "CLIP_PREPROCESSOR",
             lambda torch: torch.randint(0, 256, (1, 2, 224, 224, 3), dtype=torch.uint8)),
    "hubert": ("audio_config", "hidden_size", "HUBERT_PREPROCESSOR", lambda torch: torch.randn(1, 2, 32000)),
}


@pytest.mark.parametrize("name", entries("encoders"))
def test_every_encoder_loads_a_tiny_checkpoint_folder(name: str, tiny_cfg: ModelConfig, tmp_path: Path) -> None:
    import torch

    transformers = pytest.importorskip("transformers")
    from affectgpt.model import encoders

    field, width_key, preprocessor, make_input = recipe(ENCODER_RECIPES, "encoder", name)
    config = getattr(tiny_cfg, field)
    settings = {k: v for k, v in config.items() if k != "model_type"}
    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(transformers.AutoConfig.for_model(config["model_type"], **settings))
    model.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(getattr(encoders, preprocessor)), encoding="utf-8")

    encoder = encoders.ENCODERS.get(name)(tmp_path)  # as model/build.py calls it: a local folder, no download
    assert isinstance(encoder, encoders.Encoder) and encoder.dim == config[width_key]
    assert encoder(make_input(torch)).shape == (1, 2, config[width_key])


# ---- chat backends and extractors: the fake OpenAI-compatible server, the tiny local Qwen2 ----

def _greedy() -> Any:
    from affectgpt.llm.base import Sampling

    return Sampling(temperature=0.0, max_tokens=8)


def _server(request: pytest.FixtureRequest) -> Any:
    server = request.getfixturevalue("llm_server")
    server.add_rule("happy and excited", "[happy, excited]")
    return server


# backend -> (positional, keyword arguments), from the fixtures it needs
BACKEND_RECIPES: dict[str, Callable[[pytest.FixtureRequest], tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "openai": lambda request: ((_server(request).base_url, "fake/served-model"), {"max_retries": 0}),
    "transformers": lambda request: ((request.getfixturevalue("chat_model_dir"),), {"device": "cpu",
                                                                                      "batch_size": 1}),
}


@pytest.mark.parametrize("name", entries("llm backends"))
def test_every_llm_backend_answers_a_chat_request(name: str, request: pytest.FixtureRequest) -> None:
    from affectgpt.llm import BACKENDS
    from affectgpt.llm.base import ChatRequest, Message

    args, options = recipe(BACKEND_RECIPES, "llm backend", name)(request)
    backend = BACKENDS.get(name)(*args, **options)
    [done] = backend.complete([ChatRequest((Message("user", SENTENCE),), _greedy())])
    assert done.ok and isinstance(done.text, str), done.error


# extractor -> (its keyword arguments from the fixtures it needs, the words expected from SENTENCE; None: any
# answer but a failure, for the random-weight tiny model)
EXTRACTOR_RECIPES: dict[str, tuple[Callable[[pytest.FixtureRequest], dict[str, Any]], tuple[str, ...] | None]] = {
    "lexicon": (lambda request: {}, ("happy", "excited")),
    "openai": (lambda request: {"base_url": _server(request).base_url, "model": "fake/served-model",
                                "max_retries": 0, "cache": False, "sampling": _greedy()}, ("happy", "excited")),
    "transformers": (lambda request: {"model": str(request.getfixturevalue("chat_model_dir")), "device": "cpu",
                                      "batch_size": 1, "cache": False, "sampling": _greedy()}, None),
}


@pytest.mark.parametrize("name", entries("extractors"))
def test_every_extractor_finds_the_words_of_a_sentence(name: str, request: pytest.FixtureRequest) -> None:
    from affectgpt.extract import EXTRACTORS
    from affectgpt.extract.base import LabelResult

    options, expected = recipe(EXTRACTOR_RECIPES, "extractor", name)
    [result] = EXTRACTORS.get(name)(**options(request)).labels([SENTENCE])
    assert isinstance(result, LabelResult) and result.status != "failed", result.detail
    if expected is not None:
        assert result.words == expected


# ---- face detectors ----

@pytest.fixture(scope="module")
def face_image() -> np.ndarray:
    """A 240 x 320 blurred-noise background with the astronaut's head (skimage's bundled photo) pasted in."""
    cv2 = pytest.importorskip("cv2")
    skimage_data = pytest.importorskip("skimage.data")
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3)).astype(np.uint8)
    image = cv2.GaussianBlur(noise, (31, 31), 10)
    head = cv2.resize(skimage_data.astronaut()[15:275, 95:355], (130, 130), interpolation=cv2.INTER_AREA)
    image[60:190, 120:250] = head
    return image


@pytest.mark.parametrize("name", entries("face detectors"))
def test_every_face_detector_finds_the_face_inside_the_image(name: str, face_image: np.ndarray) -> None:
    from affectgpt.media.faces import DETECTORS, track_faces

    found = DETECTORS.get(name)()(face_image)
    height, width = face_image.shape[:2]
    assert found and all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1, _ in found)
    assert not track_faces(face_image[None], size=32, detector=name).fallback


# ---- benchmark tables: datasets, protocols, wheel releases ----

def _write_labels(folder: Path, source: Any, task: str) -> dict[str, Any]:
    """One tiny ground-truth file in the source's first stored form; returns what reading it must give."""
    keep = f"Ses0{source.session}F_a" if source.session else "sample_a"
    folder.mkdir(parents=True, exist_ok=True)
    if not source.npz_names:
        value = "[happy, excited]" if task == "ov" else ("1.5" if task == "sentiment" else "happy")
        (folder / source.csv_names[0]).write_text(f"name,{source.csv_column}\n{keep},\"{value}\"\n", encoding="utf-8")
        return {keep: 1.5 if task == "sentiment" else value}
    if source.field == "val":
        stored, expected = np.float32(1.5), 1.5
    elif source.classes:
        stored, expected = 1, source.classes[1]
    else:
        stored, expected = "happy", "happy"
    corpus = {keep: {source.field: stored}}
    if source.session:
        corpus["Ses01F_b"] = {source.field: stored}  # another session: not part of the test set
    np.savez(folder / source.npz_names[0], **{source.split: corpus})
    return {keep: expected}


@pytest.mark.parametrize("name", entries("datasets"))
def test_every_dataset_loads_its_ground_truth(name: str, tmp_path: Path) -> None:
    from affectgpt.bench.datasets import get_dataset
    from affectgpt.bench.inputs import load_ground_truth

    spec = get_dataset(name)
    assert spec.key == name and spec.primary in spec.metrics and spec.size > 0
    expected = _write_labels(tmp_path, spec.labels, spec.task)
    assert load_ground_truth(tmp_path, spec) == expected


@pytest.mark.parametrize("name", entries("label sources"))
def test_every_label_source_finds_and_reads_its_file(name: str, tmp_path: Path) -> None:
    from affectgpt.bench.datasets import get_dataset
    from affectgpt.formats.labels import find_label_file, label_source, read_label_npz

    source = label_source(name)
    expected = _write_labels(tmp_path, source, get_dataset(name).task)  # every label source is a dataset's
    found = find_label_file(tmp_path, source, name)
    assert found.name == source.file_names[0]
    if found.suffix == ".npz":
        assert read_label_npz(found, source, name) == expected


@pytest.mark.parametrize("name", entries("protocols"))
def test_every_protocol_resolves_to_wheel_maps(name: str, request: pytest.FixtureRequest) -> None:
    from affectgpt.bench.protocol import resolve_protocol

    wheel_dir = None
    if name.startswith("official"):  # the official protocols need the official files: the reference copies
        reference = request.getfixturevalue("reference_dir")
        wheel_dir = reference / ("emotion_wheel-2026" if name.endswith("2026") else "emotion_wheel")
    resolved = resolve_protocol(name, wheel_dir)
    assert resolved.maps.protocol.startswith("builtin" if wheel_dir is None else "official"), resolved.note


@pytest.mark.parametrize("name", entries("wheel versions"))
def test_every_wheel_release_fetches_and_verifies(name: str, reference_dir: Path, tmp_path: Path) -> None:
    from affectgpt.lexicon.fetch import fetch_wheels, get_release, is_complete

    release = get_release(name)
    source = reference_dir / ("emotion_wheel" if name == "2025" else f"emotion_wheel-{name}")
    mirror = tmp_path / "mirror" / release.commit / release.folder  # served as file://: no network
    mirror.mkdir(parents=True)
    for file in release.sha256:
        shutil.copyfile(source / file, mirror / file)
    dest = fetch_wheels(name, base_url=(tmp_path / "mirror").as_uri(), dest=tmp_path / "wheels")
    assert is_complete(dest, release)


@pytest.mark.parametrize("name", entries("model sources"))
def test_every_model_source_is_a_loader_of_config_base_folder_and_dtype(name: str) -> None:
    """Each entry resolves to a loader (cfg, base, folder, dtype); tests/infer and tests/train load real
    checkpoints of both kinds through describe.load_model."""
    import inspect

    from affectgpt.infer.sources import MODEL_SOURCES

    loader = MODEL_SOURCES.get(name)
    assert list(inspect.signature(loader).parameters)[:4] == ["cfg", "base", "folder", "dtype"]


@pytest.mark.parametrize("name", entries("known weights"))
def test_every_known_weights_entry_names_a_preset_and_hub_repositories(name: str) -> None:
    """Each released-weights entry builds its preset's configuration and names org/name repositories; its
    download is tested against a loopback hub in tests/hub."""
    import re

    from affectgpt.model.config import get_preset
    from affectgpt.model.known import get_known

    entry = get_known(name)
    assert entry.name == name and get_preset(entry.preset)
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+", repo) for repo in entry.repos.values()), entry.repos


# ---- unknown names: one per table ----

def _typo(which: str) -> tuple[str, str, InputError]:
    """(a real entry, that entry with its middle letter changed, the error looking the typo up raised)."""
    spec = TABLES[which]
    try:
        names = spec.names()
    except (ModuleNotFoundError, MissingExtra) as exc:
        pytest.skip(f"the {which} table needs {optional_package(exc)}")
    real = names[0]
    middle = len(real) // 2
    wrong = real[:middle] + ("y" if real[middle] == "x" else "x") + real[middle + 1:]
    assert wrong not in names
    with pytest.raises(InputError) as caught:
        spec.find(wrong)
    return real, wrong, caught.value


@pytest.mark.parametrize("which", list(TABLES))
def test_an_unknown_name_is_an_input_error_naming_the_kind_and_the_real_name(which: str) -> None:
    real, wrong, error = _typo(which)
    message = str(error)
    assert TABLES[which].kind in message and repr(wrong) in message and real in message, message


@pytest.mark.parametrize("which", list(TABLES))
def test_an_unknown_name_suggests_the_closest_entry(which: str) -> None:
    real, _, error = _typo(which)
    assert f"did you mean {real!r}" in str(error), str(error)


# ---- perceivers ----

@pytest.fixture(scope="module")
def full_scene() -> Any:
    """A scene with something for every perceiver: a real smiling face (scikit-image's astronaut, tracked by
    media), a voiced glide as audio, and an English transcript."""
    pytest.importorskip("skimage")
    from skimage import data

    from affectgpt.media.faces import track_faces
    from affectgpt.perception.base import Scene

    track = track_faces(np.stack([data.astronaut()] * 4), size=96)
    rate = 16000
    t = np.arange(int(1.6 * rate)) / rate
    glide = 0.3 * np.sin(2 * np.pi * (140 * t + 40 * t**2)) * (1 + 0.8 * np.sin(2 * np.pi * 4 * t))
    audio = np.concatenate([np.zeros(rate // 4), glide, np.zeros(rate // 4)]).astype(np.float32)
    return Scene(name="full", audio=audio, faces=track.crops, frame_times=(0.0, 0.5, 1.0, 1.5),
                 face_detected=tuple(bool(v) for v in track.detected), duration=2.1,
                 subtitle="I am so happy today, we won!", transcript="I am so happy today, we won!",
                 transcript_source="subtitle")


@pytest.mark.parametrize("name", entries("perceivers"))
def test_every_perceiver_reads_a_scene_and_flags_one_without_its_modality(name: str, full_scene: Any) -> None:
    from dataclasses import replace as copy

    from affectgpt.perception.base import EMOTIONS, Reading, Scene

    perceiver = TABLES["perceivers"].find(name)()
    assert perceiver.modality == name
    reading = perceiver(copy(full_scene, readings={}, speech_segments=[]))
    assert isinstance(reading, Reading) and reading.modality == name and reading.clues
    assert all(0.0 <= c.confidence <= 1.0 and c.text for c in reading.clues)
    assert 0.0 <= reading.weight <= 1.0
    if reading.emotions:
        assert set(reading.emotions) <= set(EMOTIONS) and sum(reading.emotions.values()) == pytest.approx(1.0)
    json.dumps(reading.figures)  # JSON-able, as `describe --format json` prints them
    empty = perceiver(Scene(name="empty"))
    assert empty.weight == 0.0 and not empty.emotions and empty.flags
