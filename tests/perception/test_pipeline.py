"""The whole pipeline on real clips (the MER sample, the astronaut + espeak-ng demo clip) and on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.perception.pipeline import Pipeline

pytestmark = pytest.mark.slow  # the speech recogniser, the encoder and the face model load once per module


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline()


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (`make speech` installs it): it speaks the demo clip's sentence")
    from affectgpt.perception.demo_clip import make_demo_clip

    return make_demo_clip(tmp_path_factory.mktemp("demo") / "demo_clip.mp4")


def _sample(reference_dir: Path) -> Path:
    return reference_dir / "media" / "sample_00000000.mp4"


def test_the_real_sample_gives_clues_from_every_modality(pipeline, reference_dir):
    answer = pipeline.describe(_sample(reference_dir))
    assert answer.backend == "perception"
    # speech: Whisper base hears Chinese and vouches for it; it becomes the text the text perceiver reads
    speech = answer.figures["speech"]
    assert answer.transcript_source == "asr" and "知道" in answer.transcript
    assert speech["language"] == "zh" and speech["language_probability"] > 0.9
    # face: media's track finds the face, FER reads it
    assert "no_face" not in answer.flags and answer.clues["face"]
    assert len(answer.figures["face"]["probabilities"]) == answer.figures["face"]["frames"]
    # voice: a woman's speaking pitch and ordinary loudness
    voice = answer.figures["voice"]
    assert 120 <= voice["pitch_median_hz"] <= 300 and -45 <= voice["loudness_median_dbfs"] <= -10
    assert 1 <= len(answer.labels) <= 3 and answer.sentiment in ("positive", "negative", "neutral")
    assert answer.description.startswith("The person speaks Chinese") and "Taken together" in answer.description
    assert {"media", "speech", "voice", "face", "text", "fusion", "total"} <= set(answer.timings)


def test_a_given_subtitle_wins_over_speech_recognition(pipeline, reference_dir):
    answer = pipeline.describe(_sample(reference_dir), "I don't know, I have no experience with this at all.")
    assert answer.transcript_source == "subtitle" and answer.transcript.startswith("I don't know")
    assert "In the text" in answer.description


def test_the_demo_clip_smiles_says_so_and_is_happy(pipeline, demo_clip):
    answer = pipeline.describe(demo_clip)
    assert answer.transcript_source == "asr" and "best day" in answer.transcript.lower()
    face = answer.figures["face"]
    assert max(face["dominant"], key=face["dominant"].count) == "happy"
    assert any("smiles" in c.text for c in answer.clues["face"])
    assert answer.labels[0] == "happy" and answer.sentiment == "positive"
    assert "disagree" not in answer.description


def test_a_silent_clip_without_a_face_is_flagged_not_an_error(pipeline, silent_clip):
    answer = pipeline.describe(silent_clip)
    assert {"no_face", "no_speech", "no_evidence"} <= set(answer.flags)
    assert answer.labels == [] and answer.transcript == ""
    assert "too little evidence" in answer.description


def test_a_clip_without_audio_is_flagged(pipeline, no_audio_clip):
    answer = pipeline.describe(no_audio_clip, "What a wonderful surprise!")
    assert "no_audio" in answer.flags and answer.transcript_source == "subtitle"
    assert answer.labels  # the subtitle still says something


def test_an_audio_file_is_read_without_a_face(pipeline, reference_dir):
    answer = pipeline.describe(reference_dir / "media" / "sample_00000000.wav")
    assert {"no_video", "no_face"} <= set(answer.flags) and "知道" in answer.transcript


def test_an_unreadable_file_is_an_input_error_naming_it(pipeline, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError) as caught:
        pipeline.describe(broken)
    assert "broken.mp4" in str(caught.value)


def test_describe_without_model_announces_the_pipeline_and_prints_json(reference_dir, capsys):
    assert main(["describe", str(_sample(reference_dir)), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "perception pipeline" in err and "not AffectGPT" in err
    record = json.loads(out)
    assert record["backend"] == "perception" and isinstance(record["labels"], list)
    assert {"description", "sentiment", "clues", "flags", "timings"} <= set(record)
    assert set(record["clues"]) == {"speech", "voice", "face", "text"}


def test_describe_text_output_shows_clues_description_labels_and_sentiment(reference_dir, capsys):
    transcripts = reference_dir / "transcripts" / "mer2023.csv"
    assert main(["describe", str(_sample(reference_dir)), "--subtitles", str(transcripts)]) == 0
    out = capsys.readouterr().out
    for heading in ("clues:", "description:", "labels:", "sentiment:", "transcript (subtitle)"):
        assert heading in out


def test_describe_of_a_broken_file_is_exit_2_naming_it(tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    assert main(["describe", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "broken.mp4" in err[-1] and "Traceback" not in "".join(err)
