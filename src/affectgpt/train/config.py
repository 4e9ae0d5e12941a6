"""TrainConfig: the schema of a training recipe (configs/*.yaml), with its cross-field rules. Imports no torch.

Load one with `affectgpt.config.load_config(path, TrainConfig, overrides)`; every key is documented in the
`Attributes:` of its class, and the defaults are the released recipe of shared/spec/affectgpt-model.md
(AdamW lr 1e-5, weight decay 0.05, batch 3 per device, bf16, hybrid targets). Every number must be finite:
NaN or an infinity anywhere (a float field, model.config) is an InputError naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from affectgpt.errors import InputError

TASKS = ("hybrid", "description", "labels")
PRECISIONS = ("no", "fp16", "bf16")
INITS = ("pretrained", "random")
BASE_DTYPES = ("float32", "bfloat16", "float16")
DISTRIBUTED = ("auto", "fsdp")


def _check_finite(section: Any, prefix: str) -> None:
    """Every float of a section (and in its tuples) is finite: NaN passes `lr <= 0` and every other comparison,
    and would only surface deep in torch (`Invalid learning rate: nan`) after a run folder is made."""
    for f in fields(section):
        value = getattr(section, f.name)
        items = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            key = f"{prefix}{f.name}"
            raise InputError(f"{list(value) if isinstance(value, tuple) else value} is not a finite number",
                             field=key, fix=f"give {key} an ordinary number")


def _check_finite_tree(value: Any, key: str) -> None:
    """The same for free-form values (model.config: ModelConfig fields, the LLM's and encoders' configs)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{value} is not a finite number", field=key, fix=f"give {key} an ordinary number")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite_tree(v, f"{key}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_finite_tree(v, f"{key}[{i}]")


@dataclass(frozen=True, slots=True)
class ModelSection:
    """Which AffectGPT to train.

    Attributes:
        preset: a named ModelConfig (`affectgpt model ls`): released, released-frame, qformer, no-fusion.
        config: ModelConfig fields that replace the preset's (e.g. `llm: /models/Qwen2.5-7B-Instruct`,
            `lora_r: 8`, `llm_config: {...}`).
        init: "pretrained" (the normal path: base LLM, tokenizer and encoders loaded from config's paths by
            model.build.build_model) or "random", the tiny in-process model of the CPU recipe and the tests:
            the LLM is built from `config.llm_config` with variance-preserving random weights seeded by
            `seed` (HF's 0.02 init gives a frozen lm_head with near-uniform logits that no LoRA can sharpen),
            its vocab_size set to a word-level tokenizer built from the training texts; an encoder named
            `random` (`visual_encoder: random`, `audio_encoder: random`) is a frozen CLIP / HuBERT built
            in-process from `visual_config` / `audio_config` with seeded random weights, one naming a local
            folder is loaded, and otherwise the data must carry precomputed features.
        base_dtype: the dtype of the frozen weights (encoders and LLM): float32, or bfloat16 / float16 to halve
            their memory (the 7B LLM: 15 instead of 30 GB per GPU under DDP). The trained weights (poolers,
            fusion, LoRA) stay float32 either way, as AdamW needs.
    """

    preset: str = "released"
    config: dict[str, Any] = field(default_factory=dict)
    init: str = "pretrained"
    base_dtype: str = "float32"

    def __post_init__(self) -> None:
        _check_finite_tree(self.config, "model.config")
        if self.init not in INITS:
            raise InputError(f"{self.init!r} is not one of {INITS}", field="model.init",
                             fix="choose pretrained or random")
        if self.base_dtype not in BASE_DTYPES:
            raise InputError(f"{self.base_dtype!r} is not one of {BASE_DTYPES}", field="model.base_dtype",
                             fix="choose float32, bfloat16 or float16")
        self.resolve()

    def resolve(self) -> Any:
        """The ModelConfig: the preset with `config` applied (unknown keys answered with did-you-mean)."""
        from affectgpt.model.config import ModelConfig, get_preset

        base = get_preset(self.preset).to_json()
        try:
            return ModelConfig.from_json({**base, **self.config})
        except InputError as exc:
            key = (exc.field or "").removeprefix("model.")
            raise InputError(exc.what, field=f"model.config.{key}" if key else "model.config",
                             fix=exc.fix) from exc
        except TypeError as exc:
            raise InputError(f"a value has the wrong type ({exc})", field="model.config",
                             fix="check the types of the ModelConfig fields") from exc


@dataclass(frozen=True, slots=True)
class SyntheticData:
    """Generated training data (the tiny CPU recipe, tests).

    Attributes:
        n: number of samples.
        seed: seed of the generator (same seed, same data).
    """

    n: int = 12
    seed: int = 0


@dataclass(frozen=True, slots=True)
class DataSection:
    """What to train on: exactly one of manifest, mercaptionplus, synthetic.

    Attributes:
        manifest: a dataset manifest file (affectgpt.data's manifest format).
        mercaptionplus: the root of a MER-Caption+ download (the released training set).
        synthetic: generate a small dataset into `<output>/data` ({n, seed}).
        features_dir: precomputed encoder features (affectgpt.data's feature cache); None encodes on the fly
            (unless extract_features).
        extract_features: before the first step, compute every sample's features with the model's frozen
            encoders into features_dir (or `<output>/features` when it is null; files already there are kept, so
            a resumed run reuses them), then train from them. Samples whose media cannot be read are listed in
            `<output>/skipped_samples.json` and left out.
        task: hybrid (each draw picks description or labels uniformly, the released recipe), description or
            labels.
    """

    manifest: str | None = None
    mercaptionplus: str | None = None
    synthetic: SyntheticData | None = None
    features_dir: str | None = None
    extract_features: bool = False
    task: str = "hybrid"

    def __post_init__(self) -> None:
        given = [k for k in ("manifest", "mercaptionplus", "synthetic") if getattr(self, k) is not None]
        if len(given) != 1:
            raise InputError(f"{'none' if not given else ' and '.join(given)} given", field="data",
                             fix="give exactly one of data.manifest, data.mercaptionplus, data.synthetic")
        if self.task not in TASKS:
            raise InputError(f"{self.task!r} is not one of {TASKS}", field="data.task",
                             fix=f"choose one of {', '.join(TASKS)}")


@dataclass(frozen=True, slots=True)
class OptimiserSection:
    """AdamW. Weight decay applies to trainable >= 2-D weights that are not biases or norms (spec).

    Attributes:
        lr: peak learning rate.
        weight_decay: decoupled weight decay of the decayed group.
        betas: Adam's (beta1, beta2).
        eps: Adam's epsilon.
    """

    lr: float = 1e-5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_finite(self, "optimiser.")
        if self.lr <= 0:
            raise InputError(f"{self.lr} is not positive", field="optimiser.lr", fix="use e.g. 1e-5")
        if self.weight_decay < 0:
            raise InputError(f"{self.weight_decay} is negative", field="optimiser.weight_decay", fix="use >= 0")
        if not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"{list(self.betas)} not in [0, 1)", field="optimiser.betas", fix="use [0.9, 0.999]")


@dataclass(frozen=True, slots=True)
class ScheduleSection:
    """Linear warm-up from ~0 to lr, then cosine down to min_lr_ratio * lr at the last step.

    Attributes:
        warmup_steps: optimiser steps of linear warm-up (step 0 runs at lr / (warmup_steps + 1)).
        total_steps: optimiser steps in all; or None and `epochs` passes over the data.
        epochs: passes over the data when total_steps is None.
        min_lr_ratio: the final lr as a fraction of lr (1.0: constant after warm-up, as the original in
            practice).
    """

    warmup_steps: int = 0
    total_steps: int | None = None
    epochs: int | None = None
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        _check_finite(self, "schedule.")
        if (self.total_steps is None) == (self.epochs is None):
            raise InputError("give exactly one of total_steps and epochs", field="schedule.total_steps",
                             fix="set schedule.total_steps (or schedule.epochs) and leave the other null")
        for key in ("warmup_steps", "total_steps", "epochs"):
            value = getattr(self, key)
            if value is not None and (value < 0 or (key != "warmup_steps" and value < 1)):
                raise InputError(f"{value} is out of range", field=f"schedule.{key}", fix="use a positive number")
        if self.total_steps is not None and self.warmup_steps > self.total_steps:
            raise InputError(f"warm-up {self.warmup_steps} is longer than total_steps {self.total_steps}",
                             field="schedule.warmup_steps", fix="shorten the warm-up")
        if not 0 <= self.min_lr_ratio <= 1:
            raise InputError(f"{self.min_lr_ratio} not in [0, 1]", field="schedule.min_lr_ratio", fix="use 0..1")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """A training recipe (configs/released.yaml, configs/tiny-cpu.yaml).

    Attributes:
        model: which model (ModelSection): preset, ModelConfig overrides, pretrained or random init.
        data: what to train on (DataSection).
        optimiser: AdamW settings (OptimiserSection).
        schedule: warm-up + cosine and the length of training (ScheduleSection).
        batch_size: samples per device per micro-batch (3 in the released recipe).
        grad_accumulation: micro-batches per optimiser step; the global batch is
            batch_size x processes x grad_accumulation, and the loss is the mean over all its target tokens.
        max_grad_norm: clip the gradient norm to this; None turns clipping off.
        precision: no (fp32), fp16 (with loss scaling) or bf16 autocast.
        seed: seeds the data order, hybrid draws, dropout and the random init.
        log_every: write a metrics.jsonl line every N optimiser steps.
        save_every: write a checkpoint every N optimiser steps (and at the end); 0: only at the end.
        keep_last: keep the last K checkpoints (0 keeps all).
        num_workers: DataLoader worker processes for reading and decoding samples.
        distributed: auto (one process, or DDP over the processes `accelerate launch` / torchrun started) or
            fsdp (FSDP2 over those processes: parameters, gradients and optimiser state sharded, one unit per LLM
            decoder layer; on GPUs over NCCL, on CPUs over gloo; with one process it trains as a single process).
            Checkpoints are the same files either way and resume under either. `deepspeed` is refused with the
            reason (not supported: use fsdp).
        tensorboard: also write TensorBoard events to `<output>/tensorboard` (needs the tensorboard package).
        progress: the progress bar on stderr (steps, loss, samples/s): null shows it when stderr is a terminal,
            true always (e.g. into a log file), false never.
    """

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=lambda: DataSection(synthetic=SyntheticData()))
    optimiser: OptimiserSection = field(default_factory=OptimiserSection)
    schedule: ScheduleSection = field(default_factory=lambda: ScheduleSection(total_steps=1000))
    batch_size: int = 3
    grad_accumulation: int = 1
    max_grad_norm: float | None = 1.0
    precision: str = "bf16"
    seed: int = 42
    log_every: int = 10
    save_every: int = 5000
    keep_last: int = 3
    num_workers: int = 0
    distributed: str = "auto"
    tensorboard: bool = False
    progress: bool | None = None

    def __post_init__(self) -> None:
        _check_finite(self, "")
        for key in ("batch_size", "grad_accumulation", "log_every"):
            if getattr(self, key) < 1:
                raise InputError(f"{getattr(self, key)} is not positive", field=key, fix="use 1 or more")
        for key in ("save_every", "keep_last", "num_workers"):
            if getattr(self, key) < 0:
                raise InputError(f"{getattr(self, key)} is negative", field=key, fix="use 0 or more")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise InputError(f"{self.max_grad_norm} is not positive", field="max_grad_norm",
                             fix="use e.g. 1.0, or null to turn clipping off")
        if self.precision not in PRECISIONS:
            raise InputError(f"{self.precision!r} is not one of {PRECISIONS}", field="precision",
                             fix="choose no, fp16 or bf16")
        if self.distributed == "deepspeed":
            # Not a silent fallback: accelerate drops a DeepSpeed plugin on CPU (the run would be DDP), and our
            # checkpoints (whole weights + name-keyed optimiser state) cannot hold ZeRO's partitioned optimiser.
            raise InputError("distributed: deepspeed is not supported", field="distributed",
                             fix="use distributed: fsdp, which shards parameters, gradients and optimiser state "
                                 "as ZeRO-3 does, on GPUs and CPUs")
        if self.distributed not in DISTRIBUTED:
            raise InputError(f"{self.distributed!r} is not one of {DISTRIBUTED}", field="distributed",
                             fix="choose auto or fsdp")

    @property
    def model_config(self) -> Any:
        """The resolved ModelConfig (before widths are read off loaded base models)."""
        return self.model.resolve()
