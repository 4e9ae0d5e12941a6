"""The multimodal backends: openai against a loopback server that checks every content part and answers by the clip
it was shown (tests/support/mm_server.py), perception on generated clips, affectgpt on the tiny checkpoint, and
every BACKENDS entry built by name and answering one job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")
pytest.importorskip("httpx")

from media_clips import tone, write_video
from mm_server import MultimodalServer, clip_frames

from affectgpt.errors import InputError
from affectgpt.harness.backends import BACKENDS, build_backend
from affectgpt.harness.backends.openai import OpenAIMultimodal
from affectgpt.harness.base import ClipInputs, Job, Output
from affectgpt.harness.clips import load_clip_inputs
from affectgpt.harness.prompts import get_prompt, render

NAMES = ("sample_00000003", "sample_00000101", "sample_00000042")  # clip k = its position here
SECONDS = (2.2, 2.5, 3.0)  # each clip's audio length
SUBTITLES = ("I can't believe you did that.", "", "What a lovely day!")
TABLE = {0: "[anger, surprise]", 1: "The person seems calm and neutral.", 2: "[happy]"}
PROMPT = get_prompt("emotion/v1")


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three clips: 20 frames numbered from 32k (mm_server.clip_frames), exact PCM 16 kHz audio of SECONDS[k]."""
    folder = tmp_path_factory.mktemp("clips")
    return [write_video(folder / f"{name}.mkv", images=clip_frames(k), fps=10, audio=tone([300 + 100 * k], seconds,
                                                                                       16000),
                        audio_codec="pcm_s16le") for k, (name, seconds) in enumerate(zip(NAMES, SECONDS, strict=True))]


@pytest.fixture
def server() -> Any:
    server = MultimodalServer(answers=dict(TABLE)).start()
    try:
        yield server
    finally:
        server.stop()


def _jobs(clip_files: list[Path], needs: frozenset[str], task: str = "description") -> list[Job]:
    return [Job(load_clip_inputs(path, needs=needs, n_frames=8, size=128, subtitle=subtitle), PROMPT, task)
            for path, subtitle in zip(clip_files, SUBTITLES[:len(clip_files)], strict=True)]


def _openai(server: MultimodalServer, tmp_path: Path, **options: Any) -> OpenAIMultimodal:
    options = {"n_frames": 4, "size": 96, "cache": tmp_path / "answers.sqlite", "concurrency": 3, "backoff": 0.01,
               **options}
    return OpenAIMultimodal(server.base_url, "qwen-omni", **options)


# ---- openai ----

def test_openai_sends_checked_parts_and_each_clip_gets_its_own_answer(server, clip_files, tmp_path):
    server.expect(images=4, audio=True, size=96)
    backend = _openai(server, tmp_path)
    assert backend.needs == {"frames", "audio", "subtitle"}
    seen: dict[int, Output] = {}
    outputs = backend.answer(_jobs(clip_files, backend.needs), on_result=seen.__setitem__)
    assert server.rejected == [] and server.count == 3
    assert [o.text for o in outputs] == [TABLE[0], TABLE[1], TABLE[2]]
    assert [o.name for o in outputs] == list(NAMES) and seen == dict(enumerate(outputs))
    assert all(o.error is None and not o.cached and o.backend == "openai" and o.model == "fake/served-model"
               and o.sampling["temperature"] == 0.0 for o in outputs)
    # every clip's whole track went, as 16 kHz WAV (requests arrive in any order)
    assert sorted(server.audio_frames) == [round(s * 16000) for s in SECONDS]
    # the instruction is the rendered prompt (subtitle sentence in front) and never names the clip
    texts = sorted(server.user_texts())
    assert texts == sorted(render(PROMPT, subtitle) for subtitle in SUBTITLES)
    assert not any(name in text for text in texts for name in NAMES)


def test_a_rerun_sends_nothing_and_a_changed_option_is_a_new_request(server, clip_files, tmp_path):
    server.expect(images=4, audio=True, size=96)
    jobs = _jobs(clip_files, frozenset({"frames", "audio", "subtitle"}))
    first = _openai(server, tmp_path).answer(jobs)
    assert server.count == 3
    again = _openai(server, tmp_path).answer(jobs)  # a new backend on the same cache file: a rerun
    assert server.count == 3
    assert [o.text for o in again] == [o.text for o in first] and all(o.cached for o in again)
    server.expect(images=3, audio=True, size=96)
    fewer = _openai(server, tmp_path, n_frames=3).answer(jobs)
    assert server.count == 6 and not any(o.cached for o in fewer) and server.rejected == []
    assert [o.text for o in fewer] == [TABLE[0], TABLE[1], TABLE[2]]


def test_429_then_500_then_success_is_survived(server, clip_files, tmp_path):
    server.expect(images=4, audio=True, size=96)
    server.add_fault("status", status=429, retry_after="0", first=1)
    server.add_fault("status", status=500, first=2)  # the first request counts for it too: it hits the second
    [output] = _openai(server, tmp_path, max_retries=3).answer(_jobs(clip_files[:1], frozenset({"frames", "audio"}))
    )
    assert server.count == 3 and output.error is None and output.text == TABLE[0]


def test_malformed_and_empty_answers_are_kept_as_the_llm_layer_keeps_them(server, clip_files, tmp_path):
    server.expect(images=4, size=96)
    server.answers.update({1: "", 2: "not a list {[ at all"})
    server.add_fault("malformed", first=1)
    backend = _openai(server, tmp_path, modalities=("image", "text"), max_retries=0, concurrency=1)
    outputs = backend.answer(_jobs(clip_files, backend.needs))
    assert outputs[0].text is None and outputs[0].error.startswith("malformed response")
    assert (outputs[1].text, outputs[1].error) == ("", None)  # empty: kept, extraction finds no word
    assert (outputs[2].text, outputs[2].error) == ("not a list {[ at all", None)  # verbatim
    rerun = _openai(server, tmp_path, modalities=("image", "text"), max_retries=0).answer(_jobs(clip_files,
                                                                                               backend.needs))
    assert server.count == 4  # only the failed one is sent again: errors are never cached
    assert rerun[0].text == TABLE[0] and not rerun[0].cached and rerun[1].cached and rerun[2].cached


def test_frames_as_one_video_and_audio_only_servers(server, clip_files, tmp_path):
    server.expect(video_frames=5, size=96)
    backend = _openai(server, tmp_path, modalities=("image", "text"), video_as="video", n_frames=5)
    assert [o.text for o in backend.answer(_jobs(clip_files, backend.needs))] == [TABLE[0], TABLE[1], TABLE[2]]
    assert server.rejected == [] and set(server.parts) == {("video", "text")}
    audio_only = _openai(server, tmp_path, modalities=("audio", "text"))
    assert audio_only.needs == {"audio", "subtitle"}
    server.expect(images=4, size=96)
    faces = _openai(server, tmp_path, modalities=("image",), visual="faces")
    assert faces.needs == {"faces"} and faces.tag != _openai(server, tmp_path, modalities=("image",)).tag
    # without "text" the instruction still goes, without the subtitle sentence
    [output] = _openai(server, tmp_path, modalities=("image",)).answer(_jobs(clip_files[:1], frozenset({"frames"})))
    assert output.text == TABLE[0] and server.user_texts()[-1] == render(PROMPT, "")


def test_a_clip_that_cannot_be_encoded_is_its_own_error_and_the_key_stays_secret(server, clip_files, tmp_path):
    server.expect(images=4, size=96)
    backend = _openai(server, tmp_path, modalities=("image", "text"), api_key="sk-very-secret")
    jobs = _jobs(clip_files[:2], backend.needs)
    jobs[0] = Job(ClipInputs("no_frames", clip_files[0]), PROMPT)
    outputs = backend.answer(jobs)
    assert outputs[0].error.startswith("cannot encode the clip") and outputs[1].text == TABLE[1]
    record = json.dumps(backend.provenance())
    assert "sk-very-secret" not in record and json.loads(record)["encode"]["n_frames"] == 4
    assert server.requests[0].headers["Authorization"] == "Bearer sk-very-secret"


def test_a_misspelt_backend_gets_the_closest_name():
    with pytest.raises(InputError, match="did you mean 'openai'"):
        build_backend("opneai", base_url="http://127.0.0.1:1/v1", model="m")


# ---- perception ----

def test_perception_answers_the_description_and_the_labels_sentence(clip_files):
    backend = build_backend("perception")
    assert backend.needs == {"video", "subtitle"}
    clip = load_clip_inputs(clip_files[2], needs=backend.needs, subtitle="I am so happy today, this is wonderful!")
    description, labels = backend.answer([Job(clip, PROMPT, "description"),
                                          Job(clip, get_prompt("ov-labels/v1"), "labels")])
    assert description.backend == labels.backend == "perception" and description.model == "perception-pipeline"
    assert "Taken together" in description.text and "so happy today" in description.text
    assert labels.text == "The character's emotional state is happy."
    bad = backend.answer([Job(ClipInputs("gone", clip_files[0].with_name("gone.mp4")), PROMPT)])
    assert bad[0].text is None and "not found" in bad[0].error.lower()


# ---- affectgpt ----

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from tiny_models import released_checkpoint

    return released_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint_000007_loss_0.500")


@pytest.mark.reference
def test_affectgpt_answers_as_the_model_itself_does(tiny_checkpoint, clip_files):
    from affectgpt.infer.describe import Generation, answer, load_model
    from affectgpt.media.inputs import load_inputs

    backend = build_backend("affectgpt", model=str(tiny_checkpoint), max_new_tokens=5, batch_size=2)
    assert backend.needs == {"video", "subtitle"}
    jobs = [Job(load_clip_inputs(path, needs=backend.needs, subtitle=subtitle), PROMPT, task)
            for path, subtitle in zip(clip_files, SUBTITLES, strict=True) for task in ("description", "labels")]
    outputs = backend.answer(jobs)
    assert [o.name for o in outputs] == [job.clip.name for job in jobs]
    assert all(o.error is None and isinstance(o.text, str) and o.backend == "affectgpt" for o in outputs)
    model, tokenizer = load_model(tiny_checkpoint)
    for job, output in zip(jobs, outputs, strict=True):
        from dataclasses import replace

        inputs = replace(load_inputs(job.clip.name, video=job.clip.video, visual_input=model.cfg.visual_input),
                         subtitle=job.clip.subtitle)
        [alone] = answer(model, tokenizer, [inputs], task=job.task, generation=Generation(max_new_tokens=5))
        assert output.text == alone


# ---- every BACKENDS entry ----

def _openai_recipe(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    server = request.getfixturevalue("server")
    server.expect(images=2, audio=True, size=64)
    return {"base_url": server.base_url, "model": "m", "n_frames": 2, "size": 64, "cache": False}


def _transformers_recipe(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_multimodal import tiny_model_folder  # a tiny random LLaVA, built offline

    return {"model": str(tiny_model_folder(tmp_path / "tiny-mm")), "max_new_tokens": 3}


# backend -> its options for one tiny job, from the fixtures it needs
RECIPES: dict[str, Any] = {
    "openai": _openai_recipe,
    "perception": lambda request, tmp_path: {},
    "affectgpt": lambda request, tmp_path: {"model": str(request.getfixturevalue("tiny_checkpoint")),
                                            "max_new_tokens": 3},
    "transformers": _transformers_recipe,
}


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_builds_by_name_and_answers_one_job(name, request, clip_files, tmp_path):
    if name not in RECIPES:
        pytest.fail(f"no recipe for the multimodal backend {name!r}: add one to RECIPES in this file")
    backend = build_backend(name, **RECIPES[name](request, tmp_path))
    assert backend.name == name and set(backend.needs) <= {"frames", "faces", "audio", "subtitle", "video"}
    clip = load_clip_inputs(clip_files[0], needs=backend.needs, n_frames=4, size=64, subtitle=SUBTITLES[0])
    seen: list[int] = []
    [output] = backend.answer([Job(clip, PROMPT)], on_result=lambda index, out: seen.append(index))
    assert seen == [0] and output.error is None and isinstance(output.text, str) and output.backend == name
    json.dumps(backend.provenance())  # JSON-able
