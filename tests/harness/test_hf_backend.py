"""The `transformers` multimodal backend on tiny random LLaVA and Qwen2-Audio folders built offline (tests/support/
tiny_multimodal.py): frames, audio and the instruction reach the model through the processor and chat template."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tiny_multimodal import tiny_audio_model_folder, tiny_model_folder  # noqa: E402

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.harness.backends.hf import HFMultimodal  # noqa: E402
from affectgpt.harness.base import ClipInputs, Job, Prompt  # noqa: E402
from affectgpt.harness.prompts import get_prompt, render  # noqa: E402


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def qwen2_audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_audio_model_folder(tmp_path_factory.mktemp("tiny-qwen2-audio"))


@pytest.fixture(scope="module")
def greedy(llava_dir: Path) -> HFMultimodal:
    return HFMultimodal(llava_dir, n_frames=3, max_new_tokens=8)


def _frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 40, 48, 3), dtype=np.uint8)


def _job(name: str, frames: np.ndarray | None, subtitle: str = "I can not believe it !") -> Job:
    clip = ClipInputs(name=name, video=Path(f"{name}.mp4"), frames=frames, subtitle=subtitle)
    return Job(clip, get_prompt("emotion/v1"))


def _reference_text(folder: Path, frames: np.ndarray, instruction: str, max_new_tokens: int) -> str:
    """What the model says, computed here with the processor and model directly and the prompt written out."""
    processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = transformers.LlavaForConditionalGeneration.from_pretrained(folder, local_files_only=True).eval()
    text = "<|im_start|>user\n" + "<image>\n" * len(frames) + instruction + "<|im_end|>\n<|im_start|>assistant\n"
    inputs = processor(text=[text], images=list(frames), return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.image_token_index).sum()) == 4 * len(frames)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=processor.tokenizer.pad_token_id)
    return processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0].strip()


def test_frames_and_instruction_go_through_the_chat_template_and_processor(greedy, llava_dir):
    frames = _frames(6)
    seen = []
    [output] = greedy.answer([_job("clip_a", frames)], on_result=lambda i, o: seen.append((i, o)))
    assert seen == [(0, output)]
    assert output.error is None and output.text
    assert (output.name, output.backend, output.model) == ("clip_a", "transformers", str(llava_dir))
    assert output.sampling == {"max_new_tokens": 8, "do_sample": False, "seed": 0} and output.seconds > 0
    instruction = render(get_prompt("emotion/v1"), "I can not believe it !")
    # n_frames=3 of 6: the uniform indices floor(i * 6 / 3) = 0, 2, 4
    assert output.text == _reference_text(llava_dir, frames[[0, 2, 4]], instruction, max_new_tokens=8)


def test_the_answer_depends_on_the_pixels(greedy):
    a, b = greedy.answer([_job("a", _frames(3, seed=1)), _job("b", _frames(3, seed=1) // 4)])
    assert a.error is None and b.error is None and a.text != b.text  # (a random model may say only special tokens)


def test_same_seed_same_sampled_text_and_another_seed_another(llava_dir):
    jobs = [_job("a", _frames(2))]
    sampler = HFMultimodal(llava_dir, do_sample=True, temperature=1.0, top_p=0.95, seed=7, max_new_tokens=12)
    first = sampler.answer(jobs)[0]
    assert first.sampling == {"max_new_tokens": 12, "do_sample": True, "seed": 7, "temperature": 1.0, "top_p": 0.95}
    assert sampler.answer(jobs)[0].text == first.text
    assert HFMultimodal(llava_dir, do_sample=True, top_p=0.95, seed=7, max_new_tokens=12).answer(jobs)[0].text \
        == first.text
    other = HFMultimodal(llava_dir, do_sample=True, top_p=0.95, seed=8, max_new_tokens=12).answer(jobs)[0]
    assert other.text != first.text


def test_a_clip_without_frames_fails_alone(greedy):
    bad, good = greedy.answer([_job("empty", None), _job("ok", _frames(2))])
    assert bad.text is None and "no frames" in bad.error and bad.name == "empty"
    assert good.error is None and good.text


def test_needs_and_provenance(greedy, llava_dir):
    assert greedy.needs == {"frames", "subtitle"}
    record = json.loads(json.dumps(greedy.provenance()))
    assert record["model"] == str(llava_dir) and record["model_type"] == "llava"
    assert record["model_class"] == "LlavaForConditionalGeneration" and record["dtype"] == "float32"
    assert record["versions"]["transformers"] == transformers.__version__
    assert record["sampling"] == greedy.sampling and record["modalities"] == ["image", "text"]


def test_without_the_text_modality_the_subtitle_is_left_out(llava_dir):
    backend = HFMultimodal(llava_dir, modalities=("image",), n_frames=2, max_new_tokens=6)
    assert backend.needs == {"frames"}
    frames = _frames(2, seed=3)
    [output] = backend.answer([Job(ClipInputs("c", Path("c.mp4"), frames=frames, subtitle="happy"),
                                   Prompt("p", "{subtitle}Please infer the emotional state ."))])
    assert output.text == _reference_text(llava_dir, frames, "Please infer the emotional state .", 6)


def test_a_hub_id_or_a_folder_that_is_no_model_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"'Qwen/Qwen2-VL-2B-Instruct' is not a local folder.*nothing is downloaded"):
        HFMultimodal("Qwen/Qwen2-VL-2B-Instruct")
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(InputError, match=r"not-a-model.*config.json is missing"):
        HFMultimodal(empty)
    (empty / "config.json").write_text('{"model_type": "llava"}', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        HFMultimodal(empty)
    assert str(empty) in str(caught.value)


def test_a_modality_the_processor_does_not_take_is_refused(llava_dir):
    with pytest.raises(InputError, match="takes no audio"):
        HFMultimodal(llava_dir, modalities=("image", "audio", "text"))
    with pytest.raises(InputError, match="takes no video"):
        HFMultimodal(llava_dir, video_as="video")
    with pytest.raises(InputError, match="n_frames"):
        HFMultimodal(llava_dir, n_frames=0)
    with pytest.raises(InputError, match="modalities"):
        HFMultimodal(llava_dir, modalities=("smell",))



def test_audio_goes_to_the_feature_extractor_and_its_tokens_into_the_prompt(qwen2_audio_dir):
    backend = HFMultimodal(qwen2_audio_dir, modalities=("audio", "text"), max_new_tokens=4)
    assert backend.needs == {"audio", "subtitle"}
    seen = {}
    generate = backend._model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return generate(**kwargs)

    backend._model.generate = spy
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 32000).astype(np.float32)
    [output] = backend.answer([Job(ClipInputs("a", Path("a.mp4"), audio=wave, subtitle="sad"),
                                   get_prompt("emotion/v1"))])
    assert output.error is None and output.text is not None
    assert tuple(seen["input_features"].shape) == (1, 16, 200)
    audio_id = backend._model.config.audio_token_index
    assert int((seen["input_ids"] == audio_id).sum()) == 50  # ((200 - 1) // 2 + 1 - 2) // 2 + 1
    with pytest.raises(InputError, match="takes no image"):
        HFMultimodal(qwen2_audio_dir, modalities=("image", "audio"))
