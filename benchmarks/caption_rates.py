"""Measure the per-clip cost of the caption pipeline's pieces on this machine (docs/caption-at-scale.md).

    python benchmarks/caption_rates.py [--reps 3]

Pieces: media decode (perception's load_clip and the harness inputs of an OpenAI-compatible clue call), the
perception pipeline per clip (all perceivers; acoustic-only speech+voice; visual-only face), with and without a
given subtitle (ASR), the template merge rendering, lexicon extraction, and the loopback overhead of one request
through the openai harness backend to tests/support/mm_server.py (encode, HTTP, decode on the server side).
Clips: the real sample (../shared/reference/media/sample_00000000.mp4, 720x404, 3.5 s) and generated ones.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("CAPTION_RATES_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT / "tests" / "support"))
SAMPLE = ROOT.parent / "shared" / "reference" / "media" / "sample_00000000.mp4"


def timed(fn, reps):
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return {"median_s": statistics.median(times), "min_s": min(times), "reps": reps}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from media_clips import frame_image, tone, write_video
    from mm_server import MultimodalServer, clip_frames

    from affectgpt.harness.backends.openai import OpenAIMultimodal
    from affectgpt.harness.base import Job
    from affectgpt.harness.clips import load_clip_inputs
    from affectgpt.media.clip import load_clip
    from affectgpt.perception.pipeline import Pipeline

    out: dict = {"cpu": os.cpu_count(), "clips": {}}
    tmp = Path(tempfile.mkdtemp(prefix="caption-rates-"))
    generated = write_video(tmp / "gen_720.mp4", images=[frame_image(i, 720, 404) for i in range(88)], fps=25,
                            audio=tone([220.0, 330.0], 3.52, 16000))
    clips = {"real_sample": SAMPLE, "generated_720x404_3.5s": generated}
    for label, clip in clips.items():
        row = out["clips"][label] = {}
        row["decode_perception"] = timed(lambda c=clip: load_clip(c, n_frames=16, size=96, faces=True,
                                                                  n_audio_clips=1), args.reps)
        row["decode_harness_8x336_audio"] = timed(
            lambda c=clip: load_clip_inputs(c, needs=frozenset({"frames", "audio"}), n_frames=8, size=336),
            args.reps)
    pipelines = {"all": Pipeline(), "acoustic_speech_voice": Pipeline(("speech", "voice")),
                 "visual_face": Pipeline(("face",))}
    for label, clip in clips.items():
        row = out["clips"][label]
        for name, pipe in pipelines.items():
            pipe.describe(clip, "I am fine.")  # warm-up: models load
            for subtitle, tag in (("I am fine, really.", "given_subtitle"), (None, "asr")):
                if name == "visual_face" and tag == "asr":
                    continue
                stats = timed(lambda c=clip, p=pipe, s=subtitle: p.describe(c, s), args.reps)
                stats["stages"] = {k: round(v, 4) for k, v in pipe.describe(clip, subtitle).timings.items()}
                row[f"perception_{name}_{tag}"] = stats
    # the caption run's own offline stages on each clip: probe (decode + write video/audio/faces), perception
    # acoustic and visual clues, template merge
    from affectgpt.caption.base import StageContext
    from affectgpt.caption.prompts import get_template, render_merge
    from affectgpt.caption.stages.acoustic import Acoustic
    from affectgpt.caption.stages.probe import Probe, source_fields
    from affectgpt.caption.stages.template_merge import merge_description
    from affectgpt.caption.stages.visual import Visual

    for label, clip in clips.items():
        row = out["clips"][label]
        context = StageContext(config={}, output=tmp / f"run_{label}")
        fields = {"name": label, **source_fields(clip)}
        row["stage_probe"] = timed(lambda f=fields, c=context: Probe()(f, c), args.reps)
        fields.update(Probe()(fields, context).fields)
        fields["subtitle"] = {"chinese": "", "english": "I am fine, really.", "text": "", "source": "given"}
        perception = StageContext(config={"backend": "perception"}, output=context.output)
        Acoustic()(fields, perception), Visual()(fields, perception)  # warm-up: models load
        row["stage_acoustic_perception"] = timed(lambda f=fields, c=perception: Acoustic()(f, c), args.reps)
        row["stage_visual_perception"] = timed(lambda f=fields, c=perception: Visual()(f, c), args.reps)
        fields.update(Acoustic()(fields, perception).fields)
        fields.update(Visual()(fields, perception).fields)
        row["stage_template_merge"] = timed(lambda f=fields: merge_description(
            f["acoustic_clues"], f["visual_clues"], "I am fine, really."), 50)
    prompt = get_template("merge/v1")
    n = 20000
    began = time.perf_counter()
    for i in range(n):
        render_merge(prompt, acoustic=f"clue {i} a raised, fast voice", visual=f"clue {i} frowning",
                     subtitle="Why now?")
    out["merge_prompt_render_per_clip_s"] = (time.perf_counter() - began) / n
    began = time.perf_counter()
    for i in range(2000):
        merge_description(f"The voice is loud and fast ({i}), it sounds aroused.",
                          f"He frowns and looks away ({i}).", "Why now?")
    out["template_merge_unique_per_clip_s"] = (time.perf_counter() - began) / 2000
    from affectgpt.extract.lexicon_extractor import LexiconExtractor

    texts = [f"In clip {i}, the speaker's raised voice and frown suggest he is angry and frustrated, "
             f"though a brief smile hints at relief; overall anxious and tense (take {i})." for i in range(5000)]
    began = time.perf_counter()
    LexiconExtractor().labels(texts)
    out["lexicon_extract_per_clip_s"] = (time.perf_counter() - began) / len(texts)
    # loopback: the openai harness backend -> a local OpenAI-compatible server that decodes every part
    answers = {k: f"clue {k}" for k in range(8)}
    files = [write_video(tmp / f"mm_{k}.mkv", images=clip_frames(k), fps=10, audio=tone([300 + 50 * k], 2.0, 16000),
                         audio_codec="pcm_s16le") for k in range(8)]
    server = MultimodalServer(answers=answers).start()
    try:
        loop = {}
        for label, modalities, needs in (("audio_only", ["audio", "text"], {"audio"}),
                                         ("frames_8x336", ["image", "text"], {"frames"})):
            jobs = [Job(load_clip_inputs(f, needs=frozenset(needs) | {"frames"}, n_frames=8, size=336),
                        get_template("acoustic/v1")) for f in files]
            if label == "audio_only":  # the server identifies the clip by its pictures: send one small frame too
                modalities = ["image", "audio", "text"]
                backend = OpenAIMultimodal(server.base_url, "m", modalities=modalities, n_frames=1, size=64,
                                           cache=False, concurrency=1)
            else:
                backend = OpenAIMultimodal(server.base_url, "m", modalities=modalities, n_frames=8, size=336,
                                           cache=False, concurrency=1)
            backend.answer(jobs[:1])
            began = time.perf_counter()
            outputs = backend.answer(jobs)
            serial = (time.perf_counter() - began) / len(jobs)
            assert all(o.error is None for o in outputs), [o.error for o in outputs]
            loop[label] = {"per_request_serial_s": serial}
        out["loopback_openai_backend"] = loop
    finally:
        server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
