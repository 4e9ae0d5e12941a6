"""The caption stages on real inputs: probe on generated clips and the real sample, subtitles given or recognised,
perception clues, clue backends against the loopback multimodal server (what each call carries), the length
filter on hand-made descriptions, lexicon labels, and the STAGES table's contract."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from media_clips import tone, write_video
from mm_server import MultimodalServer, clip_frames

from affectgpt.caption.base import STAGE_ORDER, StageContext, StageResult
from affectgpt.caption.prompts import TEMPLATES
from affectgpt.caption.stages import STAGES
from affectgpt.caption.stages.probe import source_fields
from affectgpt.errors import InputError
from conftest import write_csv

TONES = {0: 300.0, 1: 700.0}
TABLE = {0: "A low, steady voice with long pauses: the speaker sounds tired.",
         1: "The person smiles and nods, then looks away."}
CONTRACT = {
    "probe": {"video_file", "audio_file", "face_file", "duration", "has_audio", "has_face", "probe_flags",
              "media_sha"},
    "subtitle": {"subtitle"}, "acoustic": {"acoustic_clues"}, "visual": {"visual_clues"},
    "merge": {"description"}, "lowlevel": set(), "highlevel": {"highlevel"}, "labels": {"openset", "sentiment"},
}


def run(name: str, fields: dict[str, Any], out: Path, config: dict[str, Any] | None = None,
        resources: dict[str, Any] | None = None) -> StageResult:
    stage = STAGES.get(name)()
    section = {**stage.defaults, **(config or {})}
    stage.check(section)
    context = StageContext(config=section, output=out, resources={} if resources is None else resources)
    if stage.scope == "dataset":
        context.params = stage.prepare([fields], section)
    return stage(fields, context)


def probed(video: Path, out: Path) -> dict[str, Any]:
    fields = {"name": video.stem, **source_fields(video)}
    result = run("probe", fields, out)
    assert result.dropped is None, result.dropped
    return {**fields, **result.fields}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two 2-s clips with numbered frames (mm_server.clip_frames(k)) and an exact PCM tone of TONES[k] Hz."""
    folder = tmp_path_factory.mktemp("caption-clips")
    return [write_video(folder / f"gen{k}.mkv", images=clip_frames(k), fps=10, audio=tone([TONES[k]], 2.5, 16000),
                        audio_codec="pcm_s16le") for k in TONES]


def wav_info(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path)) as track:
        return track.getframerate(), track.getnchannels(), track.getsampwidth(), track.getnframes()


def test_probe_writes_the_released_files_of_a_generated_clip(clips, tmp_path):
    fields = probed(clips[0], tmp_path)
    assert fields["video_file"] == "video/gen0.mkv" and fields["audio_file"] == "audio/gen0.wav"
    assert (tmp_path / "video/gen0.mkv").read_bytes() == clips[0].read_bytes()
    assert wav_info(tmp_path / "audio/gen0.wav") == (16000, 1, 2, 40000)  # 2.5 s of exact PCM at 16 kHz
    assert fields["has_audio"] and fields["duration"] == pytest.approx(2.0)
    # numbered blocks are no face: no crops are written (media's centre squares are not faces)
    assert not fields["has_face"] and fields["face_file"] is None and "no_face" in fields["probe_flags"]
    assert not (tmp_path / "openface_face").exists()
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []  # no temp file left


def test_probe_real_sample_finds_the_face(reference_dir, tmp_path):
    fields = probed(reference_dir / "media" / "sample_00000000.mp4", tmp_path)
    assert fields["has_face"] and fields["has_audio"] and fields["duration"] == pytest.approx(3.52, abs=0.05)
    crops = np.load(tmp_path / fields["face_file"], allow_pickle=False)
    assert fields["face_file"] == "openface_face/sample_00000000/sample_00000000.npy"
    assert crops.shape == (8, 224, 224, 3) and crops.dtype == np.uint8 and crops.std() > 10
    rate, channels, width, frames = wav_info(tmp_path / fields["audio_file"])
    assert (rate, channels, width) == (16000, 1, 2) and frames == pytest.approx(3.46 * 16000, rel=0.03)


def test_probe_drops_an_unreadable_clip_and_keys_on_content(clips, tmp_path, no_audio_clip):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    result = run("probe", {"name": "broken", **source_fields(bad)}, tmp_path / "out")
    assert result.dropped.startswith("unreadable: ") and not result.fields
    silent = probed(no_audio_clip, tmp_path / "out")
    assert silent["audio_file"] is None and not silent["has_audio"]
    # the fingerprint follows the content, not the file's path or time
    copy = tmp_path / "copy.mkv"
    copy.write_bytes(clips[0].read_bytes())
    assert source_fields(copy)["video_sha"] == source_fields(clips[0])["video_sha"] != \
        source_fields(clips[1])["video_sha"]


def test_subtitle_given_wins_and_a_missing_row_is_none(clips, tmp_path):
    table = write_csv(tmp_path / "subs.csv", "name,chinese,english", [("gen0", "你好", "Hello there.")])
    config = {"subtitles": str(table)}
    given = run("subtitle", probed(clips[0], tmp_path), tmp_path, config)
    assert given.fields == {"subtitle": {"chinese": "你好", "english": "Hello there.", "text": "Hello there.",
                                         "source": "given"}}
    missing = run("subtitle", probed(clips[1], tmp_path), tmp_path, config)
    assert missing.fields["subtitle"] == {"chinese": "", "english": "", "text": "", "source": "none"}
    with pytest.raises(InputError, match="subtitle file not found"):
        STAGES.get("subtitle")().check({"subtitles": str(tmp_path / "nope.csv")})


def test_subtitle_asr_keeps_the_real_sample_and_not_a_tone(reference_dir, clips, tmp_path):
    resources: dict[str, Any] = {}
    sample = probed(reference_dir / "media" / "sample_00000000.mp4", tmp_path)
    heard = run("subtitle", sample, tmp_path, {"asr": True}, resources)
    subtitle = heard.fields["subtitle"]
    assert subtitle["source"] == "asr" and subtitle["text"] and subtitle["chinese"] == subtitle["text"]
    assert heard.info["asr"] == "kept" and heard.info["language"] == "zh"
    tone_only = run("subtitle", probed(clips[0], tmp_path), tmp_path, {"asr": True}, resources)
    assert tone_only.fields["subtitle"]["source"] == "none" and tone_only.info["asr"] != "kept"


def test_perception_clues_of_the_real_sample(reference_dir, tmp_path):
    fields = probed(reference_dir / "media" / "sample_00000000.mp4", tmp_path)
    acoustic = run("acoustic", fields, tmp_path)
    visual = run("visual", fields, tmp_path)
    assert acoustic.fields["acoustic_clues"].startswith("The person speaks for ")
    assert "pitch" in acoustic.fields["acoustic_clues"] and acoustic.info["backend"] == "perception"
    assert visual.fields["visual_clues"].startswith("The person ") and visual.info["input"] == "faces"


def test_the_offline_chain_on_the_real_sample_writes_each_stage_contract(reference_dir, tmp_path):
    table = write_csv(tmp_path / "subs.csv", "name,chinese,english",
                      [("sample_00000000", "我哪知道啊", "How would I know? I have no such experience.")])
    configs = {"subtitle": {"subtitles": str(table)},  # highlevel: the perception voters, every clip kept
               "highlevel": {"enabled": True, "checks": "none", "voters": [{"kind": "text"}, {"kind": "face"}]}}
    fields: dict[str, Any] = {"name": "sample_00000000",
                              **source_fields(reference_dir / "media" / "sample_00000000.mp4")}
    for name in STAGE_ORDER:
        result = run(name, fields, tmp_path, configs.get(name))
        assert result.dropped is None and set(result.fields) == CONTRACT[name], name
        fields.update(result.fields)
    assert "How would I know?" in fields["description"] and fields["sentiment"] in ("positive", "negative",
                                                                                    "neutral")
    assert all(isinstance(w, str) for w in fields["openset"])


class ToneServer(MultimodalServer):
    """MultimodalServer that also tells clips apart by ear: a request without a picture is the clip whose tone
    (TONES) is the WAV's loudest frequency."""

    def clip_of(self, body: Any) -> int:
        content = body["messages"][-1]["content"]
        audio = [part for part in content if part.get("type") == "input_audio"]
        if not audio:
            return super().clip_of(body)
        with wave.open(io.BytesIO(base64.b64decode(audio[0]["input_audio"]["data"]))) as track:
            samples = np.frombuffer(track.readframes(track.getnframes()), "<i2").astype(np.float64)
        peak = np.argmax(np.abs(np.fft.rfft(samples))) * 16000 / len(samples)
        return min(TONES, key=lambda k: abs(TONES[k] - peak))


@pytest.fixture
def server():
    server = ToneServer(answers=dict(TABLE)).start()
    try:
        yield server
    finally:
        server.stop()


def openai(server: MultimodalServer, tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {"backend": "openai", "options": {"base_url": server.base_url, "model": "omni", "backoff": 0.01,
                                             "cache": str(tmp_path / "answers.sqlite"), **more}}


def test_acoustic_call_carries_only_the_audio_and_the_instruction(server, clips, tmp_path):
    server.expect(audio=True)
    for k, clip in enumerate(clips):
        fields = {**probed(clip, tmp_path), "subtitle": {"text": f"line {k}", "source": "given"}}
        result = run("acoustic", fields, tmp_path, openai(server, tmp_path))
        assert result.fields == {"acoustic_clues": TABLE[k]}, (result.dropped, server.rejected)
        assert result.info["prompt"] == "acoustic/v1" and result.info["backend"] == "openai"
    assert server.parts == [("audio", "text")] * 2 and server.rejected == []
    instruction = TEMPLATES["acoustic/v1"].replace("{subtitle}", "The subtitle of this video is: line 1\n")
    assert server.user_texts()[-1] == instruction


def test_visual_call_carries_only_pictures_and_the_instruction(server, clips, tmp_path):
    fields = {**probed(clips[1], tmp_path), "subtitle": {"text": "", "source": "none"}}
    server.expect(images=4, size=336)
    frames = run("visual", fields, tmp_path, {**openai(server, tmp_path), "input": "frames", "n_frames": 4})
    assert frames.fields == {"visual_clues": TABLE[1]} and frames.info["input"] == "frames"
    no_face = run("visual", fields, tmp_path, {**openai(server, tmp_path), "n_frames": 4, "size": 336})
    assert no_face.info["input"] == "frames (no face found)" and no_face.info["cached"]  # same request: cached
    # face crops as the probe stores them: clip 0's numbered frames stand in for a face track of 6 crops
    crops = tmp_path / "openface_face" / "gen0" / "gen0.npy"
    crops.parent.mkdir(parents=True)
    np.save(crops, np.stack(clip_frames(0, 6)), allow_pickle=False)
    server.expect(images=6, size=336)
    faces = run("visual", {**fields, "face_file": "openface_face/gen0/gen0.npy"}, tmp_path, openai(server, tmp_path))
    assert faces.fields == {"visual_clues": TABLE[0]} and faces.info["input"] == "faces"
    assert server.parts == [("image",) * 4 + ("text",), ("image",) * 6 + ("text",)]
    assert server.user_texts()[-1] == TEMPLATES["visual/v1"].replace("{subtitle}", "")


def test_a_failing_backend_drops_the_clip_with_its_reason(server, clips, tmp_path):
    server.add_fault("status", status=500)
    fields = probed(clips[0], tmp_path)
    result = run("acoustic", fields, tmp_path, openai(server, tmp_path, max_retries=0))
    assert result.dropped.startswith("backend_error: ") and "500" in result.dropped


@pytest.mark.parametrize(("stage", "section", "match"), [
    ("acoustic", {"backend": "openia"}, "did you mean 'openai'"),
    ("acoustic", {"backend": "openai", "options": {"modalities": ["image"]}}, "chosen by the acoustic stage"),
    ("visual", {"input": "face"}, "not faces or frames"),
    ("merge", {"backend": "gpt"}, "unknown merge backend"),
    ("merge", {"prompt": "merge/v9"}, "unknown caption prompt"),
    ("merge", {"sampling": {"temprature": 0.1}}, "unknown sampling setting"),
    ("lowlevel", {"speaker_mismatch": {"enabled": True, "detector": "synk"}}, "did you mean 'sync'"),
    ("lowlevel", {"length_tails": {"k": -1}}, "positive number"),
    ("highlevel", {"enabled": True}, "at least one voter"),
    ("labels", {"backend": "lexicom"}, "did you mean 'lexicon'"),
    ("probe", {"n_frame": 8}, "unknown option"),
])
def test_bad_sections_are_input_errors_before_any_clip(stage, section, match):
    with pytest.raises(InputError, match=match):
        STAGES.get(stage)().check({**STAGES.get(stage)().defaults, **section})


def lowlevel_drops(lengths: list[int], k: float = 2.0) -> tuple[list[int], dict[str, Any]]:
    stage = STAGES.get("lowlevel")()
    records = [{"description": " ".join(["word"] * n)} for n in lengths]
    section = {**stage.defaults, "length_tails": {"enabled": True, "k": k}}
    params = stage.prepare(records, section)
    context = StageContext(config=section, output=Path("."), params=params)
    return [n for n, fields in zip(lengths, records, strict=True) if stage(fields, context).dropped], params


def test_lowlevel_drops_exactly_the_hand_computed_tails():
    # nine of 10 words and one of 40: mean 13, population std sqrt((9 * 3^2 + 27^2) / 10) = 9 -> keep [-5, 31]
    dropped, params = lowlevel_drops([10] * 9 + [40])
    assert dropped == [40]
    assert params["length_tails"] | {} == {"k": 2.0, "n": 10, "mean": 13.0, "std": 9.0, "low": -5.0, "high": 31.0}
    # eight of 20, one of 2, one of 38: mean 20, std sqrt(2 * 18^2 / 10) = 8.0498 -> keep [3.9003, 36.0997]
    dropped, params = lowlevel_drops([20] * 8 + [2, 38])
    assert dropped == [2, 38] and (params["length_tails"]["low"], params["length_tails"]["high"]) == (3.9003, 36.0997)
    assert lowlevel_drops([20] * 8 + [2, 38], k=2.5)[0] == []  # 18 / 8.05 = 2.24 std: inside 2.5
    assert lowlevel_drops([7, 7, 7])[0] == [] and lowlevel_drops([7])[0] == []  # no spread: nothing to cut


def test_labels_are_the_lexicon_words_of_the_description(tmp_path):
    text = "The character looks happy and a little nervous, but not angry."
    result = run("labels", {"description": text}, tmp_path)
    assert result.fields == {"openset": ["happy", "nervous"], "sentiment": "negative"}  # the later word weighs more
    assert run("labels", {"description": "The character is calm and content."}, tmp_path).fields == \
        {"openset": ["calm", "content"], "sentiment": "positive"}


@pytest.mark.parametrize("name", STAGE_ORDER)
def test_every_stage_builds_with_its_contract(name):
    stage = STAGES.get(name)()
    assert stage.name == name and isinstance(stage.version, str) and stage.scope in ("clip", "dataset")
    assert all(isinstance(f, str) for f in stage.reads) and set(stage.writes) == CONTRACT[name]
    assert callable(stage) and (stage.scope == "clip" or callable(stage.prepare))
    stage.check(dict(stage.defaults))  # the defaults are a valid section
    assert sorted(STAGES.names()) == sorted(STAGE_ORDER)
