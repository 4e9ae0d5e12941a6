"""The YAML config loader on TrainConfig: strict keys with did-you-mean, type checks, --set overrides, rules."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("yaml")

from affectgpt.config import dump_config, load_config
from affectgpt.errors import InputError
from affectgpt.train.config import TrainConfig

BASE = """
model: {preset: released}
data: {synthetic: {n: 4, seed: 1}}
schedule: {total_steps: 10}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return path


def test_unknown_key_names_file_and_dotted_key_with_a_suggestion(tmp_path):
    path = write(tmp_path, "optimiser: {lrr: 1.0e-4}\n")
    with pytest.raises(InputError) as info:
        load_config(path, TrainConfig)
    assert info.value.path == str(path) and info.value.field == "optimiser.lrr"
    assert "did you mean 'optimiser.lr'" in str(info.value)


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(InputError, match="did you mean 'batch_size'"):
        load_config(write(tmp_path, "batchsize: 3\n"), TrainConfig)


def test_unknown_model_config_key_is_named(tmp_path):
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, "").with_name("recipe.yaml"), TrainConfig, ["model.config.lora_rr=8"])
    assert info.value.field == "model.config.lora_rr" and "lora_r" in str(info.value)


@pytest.mark.parametrize(("text", "key"), [("batch_size: three\n", "batch_size"),
                                            ("precision: true\n", "precision"),
                                            ("optimiser: {betas: [0.9]}\n", "optimiser.betas"),
                                            ("max_grad_norm: [1]\n", "max_grad_norm"),
                                            ("data: 3\n", "data")])
def test_wrong_types_name_the_key(tmp_path, text, key):
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text), TrainConfig)
    assert info.value.field == key


def test_set_overrides_are_parsed_as_yaml(tmp_path):
    overrides = ["optimiser.lr=2e-5", "max_grad_norm=null", "model.config.lora_r=8", "optimiser.betas=[0.8, 0.9]"]
    cfg = load_config(write(tmp_path, ""), TrainConfig, overrides)
    assert cfg.optimiser.lr == 2e-5 and cfg.max_grad_norm is None
    assert cfg.model_config.lora_r == 8 and cfg.optimiser.betas == (0.8, 0.9)
    assert cfg.data.synthetic.n == 4  # untouched sections keep their values


def test_bad_override_syntax(tmp_path):
    with pytest.raises(InputError, match="--set"):
        load_config(write(tmp_path, ""), TrainConfig, ["optimiser.lr"])


def test_cross_field_rules_name_the_key_and_file(tmp_path):
    path = write(tmp_path, "data: {synthetic: {n: 4}, manifest: m.jsonl}\n")
    with pytest.raises(InputError) as info:
        load_config(path, TrainConfig)
    assert info.value.field == "data" and info.value.path == str(path)
    with pytest.raises(InputError, match=r"schedule\.total_steps"):
        load_config(write(tmp_path, ""), TrainConfig, ["schedule.epochs=3"])
    with pytest.raises(InputError, match="precision"):
        load_config(write(tmp_path, ""), TrainConfig, ["precision=fp8"])
    with pytest.raises(InputError, match="got bool") as info:  # YAML's `no` is false: say how to quote it
        load_config(write(tmp_path, ""), TrainConfig, ["precision=no"])
    assert 'precision="no"' in info.value.fix
    assert load_config(write(tmp_path, ""), TrainConfig, ['precision="no"']).precision == "no"
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, ""), TrainConfig, ["distributed=zero3"])
    assert info.value.field == "distributed" and "fsdp" in info.value.fix


def test_deepspeed_is_refused_with_the_way_out(tmp_path):
    path = write(tmp_path, "distributed: deepspeed\n")
    with pytest.raises(InputError, match="deepspeed is not supported") as info:
        load_config(path, TrainConfig)
    assert info.value.field == "distributed" and info.value.path == str(path)
    assert "distributed: fsdp" in info.value.fix


def test_dump_round_trips(tmp_path):
    cfg = load_config(write(tmp_path, ""), TrainConfig, ["optimiser.lr=3e-4"])
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(cfg), encoding="utf-8")
    assert load_config(path, TrainConfig) == cfg


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_config(tmp_path / "nope.yaml", TrainConfig)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(bad, TrainConfig)
