"""Every training recipe in configs/ loads into TrainConfig, and its resolved dump loads back to an equal config;
every caption config (configs/caption-*.yaml) loads as a CaptionConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("yaml")

from affectgpt.config import build_config, dump_config, load_config
from affectgpt.train.config import TrainConfig

ALL = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
CAPTION = [p for p in ALL if p.name.startswith("caption-")]
CONFIGS = [p for p in ALL if p not in CAPTION]


def test_the_recipes_are_there():
    assert {p.name for p in CONFIGS} >= {"released.yaml", "tiny-cpu.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_and_round_trips(path: Path):
    import yaml

    cfg = load_config(path, TrainConfig)
    again = build_config(TrainConfig, yaml.safe_load(dump_config(cfg)))
    assert again == cfg
    assert cfg.model_config is not None  # the model section resolves to a ModelConfig


def test_released_recipe_is_the_spec():
    cfg = load_config(CONFIGS[0].parent / "released.yaml", TrainConfig)
    assert (cfg.optimiser.lr, cfg.optimiser.weight_decay, cfg.batch_size, cfg.precision) == (1e-5, 0.05, 3, "bf16")
    assert (cfg.schedule.total_steps, cfg.save_every, cfg.data.task) == (300000, 5000, "hybrid")
    assert cfg.model_config.lora_r == 16 and cfg.model_config.fusion == "attention"


@pytest.mark.parametrize("path", CAPTION, ids=lambda p: p.name)
def test_every_caption_config_loads(path: Path):
    from affectgpt.caption.base import STAGE_ORDER
    from affectgpt.caption.config import load_caption_config

    cfg = load_caption_config(path)
    assert set(cfg.stages) == set(STAGE_ORDER)
