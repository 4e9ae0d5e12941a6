"""benchmarks/gpu_check.py: its --quick run (the same code as on a GPU, tiny and on CPU) and its FLOP count."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from affectgpt.bench.datasets import DATASETS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(the JSON of the last stdout line, the JSON of --json PATH) of one `gpu_check.py --quick` run."""
    path = tmp_path_factory.mktemp("gpu_check") / "figures.json"
    # a peak given on the command line, so that the MFU arithmetic runs on a CPU too
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(path), "--peak-tflops", "100"],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), json.loads(path.read_text(encoding="utf-8"))


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_prints_one_json_object_with_every_section_and_writes_the_same(quick):
    printed, written = quick
    assert printed == written
    assert printed["mode"] == "quick"
    assert {"device", "training", "generation", "fsdp", "total_seconds"} <= printed.keys()
    assert printed["device"]["peak_tflops"] == 100.0 and printed["device"]["peak_source"] == "--peak-tflops"
    for name in ("training", "generation", "fsdp"):
        assert "stopped" not in printed[name] and "error" not in printed[name], printed[name]


@pytest.mark.slow
def test_quick_training_figures_are_consistent(quick):
    training = quick[0]["training"]
    assert [run["batch"] for run in training["runs"]] == [1, 3]
    flops = training["flops_per_token"]
    assert flops["total"] == flops["trained"] + flops["frozen"] + flops["attention"] > 0
    for run in training["runs"]:
        assert _positive(run["step_s"]) and _positive(run["peak_memory_gib"])
        assert run["tokens_per_step"] == run["batch"] * training["seq_len"]
        assert run["tokens_per_s"] == pytest.approx(run["tokens_per_step"] / run["step_s"], rel=1e-9)
        assert run["losses_finite"] is True
        assert run["mfu"] == pytest.approx(run["tokens_per_s"] * flops["total"] / 100e12, rel=1e-9)


@pytest.mark.slow
def test_quick_generation_makes_the_fixed_token_count_and_projects_all_nine_sets(quick):
    generation = quick[0]["generation"]
    new_tokens = generation["new_tokens"]
    assert [run["batch"] for run in generation["runs"]] == [1, 3]
    for run in generation["runs"]:
        assert run["new_tokens_shape"] == [run["batch"], new_tokens]
        assert run["answers"] == run["batch"]
        assert run["tokens"] == run["batch"] * new_tokens
        assert run["tokens_per_s"] == pytest.approx(run["tokens"] / run["seconds"], rel=1e-9)
        assert _positive(run["peak_memory_gib"])
    projection = generation["projection"]
    clips = sum(spec.size for spec in DATASETS.values())
    assert projection["clips"] == clips == 12799
    assert projection["prompts"] == ["description", "labels"]
    best = max(generation["runs"], key=lambda run: run["tokens_per_s"])
    assert projection["batch"] == best["batch"] and projection["tokens_per_s"] == best["tokens_per_s"]
    assert projection["tokens"] == clips * 2 * new_tokens
    assert projection["seconds"] == pytest.approx(clips * 2 * new_tokens / best["tokens_per_s"], rel=1e-9)
    assert projection["hours"] == pytest.approx(projection["seconds"] / 3600)


@pytest.mark.slow
def test_quick_fsdp_shards_over_two_processes_and_resumes_exactly(quick):
    fsdp = quick[0]["fsdp"]
    assert fsdp["backend"] == "gloo" and fsdp["processes"] == 2
    held, whole = fsdp["params_per_rank"], fsdp["params_whole"]
    assert len(held) == 2 and all(0 < h < whole for h in held) and sum(held) >= whole
    assert fsdp["trained_tensors"] > 0 and fsdp["same_keys"] is True
    assert fsdp["weights_max_abs_diff"] == 0.0 and fsdp["loss_straight"] == fsdp["loss_resumed"]
    assert fsdp["exact"] is True and fsdp["resume_equal"] is True


def _hand_count(cfg, seq: int) -> dict[str, int]:
    """The FLOPs of train_flops_per_token written out from the shapes (Qwen2 layers, LoRA on all 7 projections)."""
    c = cfg.llm_config
    h, inter, layers, vocab, r = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], \
        c["vocab_size"], cfg.lora_r
    head = h // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * head
    frozen = layers * (h * h + 2 * h * kv + h * h + 3 * h * inter) + h * vocab  # q, k, v, o, gate/up/down, lm_head
    trained = layers * r * ((h + h) + 2 * (h + kv) + (h + h) + 3 * (h + inter))  # A: r x in, B: out x r
    attention = 3 * 2 * 2 * layers * seq * h  # QK^T and AV forward (2 * 2 * S * d each token), x3 with backward
    return {"trained_params": trained, "frozen_params": frozen, "trained": 6 * trained, "frozen": 4 * frozen,
            "attention": attention, "total": 6 * trained + 4 * frozen + attention}


def test_flops_per_token_match_a_hand_count_from_the_shapes():
    from affectgpt.model.config import PRESETS
    from affectgpt.model.summary import train_flops_per_token

    tiny = replace(PRESETS["released"], lora_r=4, llm_config={
        "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": False})
    assert train_flops_per_token(tiny, 50) == _hand_count(tiny, 50)
    released = train_flops_per_token(PRESETS["released"], 512)
    assert released == _hand_count(PRESETS["released"], 512)
    assert released["trained_params"] == 40_370_176  # LoRA r16 on Qwen2.5-7B (model/lm.py)


def test_peak_table_picks_the_variant_and_refuses_unknown_gpus():
    script = _script()
    assert script.peak_for("NVIDIA H100 80GB HBM3") == (989.0, "table: H100")
    assert script.peak_for("NVIDIA H100 PCIe")[0] == 756.0
    assert script.peak_for("NVIDIA H200")[0] == 989.0
    assert script.peak_for("NVIDIA A100-SXM4-80GB")[0] == 312.0
    assert script.peak_for("NVIDIA L40S")[0] == 362.0
    assert script.peak_for("NVIDIA L4")[0] == 121.0
    peak, why = script.peak_for("Tesla T4")
    assert peak is None and "--peak-tflops" in why


def test_without_a_gpu_or_a_given_peak_there_is_no_mfu_and_the_json_says_why():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the peak comes from the table")
    info = _script().device_info(None)
    assert info["gpu"] is None and info["gpu_count"] == 0 and info["peak_tflops"] is None
    assert "no GPU" in info["peak_source"]


@pytest.mark.slow
def test_an_out_of_memory_at_one_batch_size_is_recorded_and_the_next_size_runs(monkeypatch):
    import time

    import torch

    from affectgpt.train import loop

    script = _script()
    real_step = loop.train_step

    def step(model, micro, *args):
        if micro[0].input_ids.shape[0] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(model, micro, *args)

    monkeypatch.setattr(loop, "train_step", step)
    section = script.bench_training(script.model_config(True), script.QUICK, 32, None, time.monotonic() + 60)
    assert section["runs"][0] == {"batch": 1, "error": "out of memory"}
    assert section["runs"][1]["batch"] == 3 and section["runs"][1]["losses_finite"] is True


@pytest.mark.slow
def test_a_section_past_its_budget_stops_and_says_so():
    import time

    script = _script()
    section = script.bench_generation(script.model_config(True), script.QUICK, time.monotonic() - 1)
    assert section["runs"] == [] and "projection" not in section
    assert section["stopped"] == "time budget reached before batch 1"
