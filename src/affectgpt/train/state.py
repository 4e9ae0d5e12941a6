"""Training state on disk: checkpoint folders (weights, optimiser, scheduler, RNG), their pruning, metrics.jsonl.

A checkpoint `<output>/checkpoint_<step:06d>/` is our model checkpoint (model/checkpoint.py: model.safetensors +
config.json, loadable for inference as is) plus `state/`: `optimizer.pt` (tensors and plain containers only,
read back with `torch.load(weights_only=True)`), `trainer.json` (step, scheduler, loss scaler, run facts) and
`rng_<rank>.safetensors` (each process's torch RNG). No pickled objects are ever loaded. A folder is written
under a temporary name and renamed when complete, so a killed run never leaves a half checkpoint to resume from.

Weights and optimiser state are stored whole and keyed by parameter name, however the run was distributed:
under FSDP they are gathered from the processes' shards (`gather`) and split again on resume
(`restore_optimizer`). So one process, DDP and FSDP write the same files, and a checkpoint resumes under any of
them (and with another number of processes, as long as the global batch stays the same).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from affectgpt.errors import InputError
from affectgpt.model import checkpoint

CHECKPOINT = re.compile(r"^checkpoint_(\d{6,})$")
STATE = "state"
METRICS = "metrics.jsonl"


def checkpoint_dir(output: Path, step: int) -> Path:
    return output / f"checkpoint_{step:06d}"


def list_checkpoints(output: Path) -> list[Path]:
    """Complete checkpoint folders in `output`, oldest first."""
    if not output.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output.iterdir() if (m := CHECKPOINT.match(p.name))
             and (p / STATE / "trainer.json").is_file()]
    return [p for _, p in sorted(found)]


def gather(model: Any, inner: Any, optimizer: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The trainable weights and the optimiser state, whole and keyed by parameter name (a collective: every
    process calls it; in a distributed run the main process gets them on the CPU, the others empty dicts).

    `model` is the prepared model (plain, DDP or FSDP), `inner` the same unwrapped (its parameter names are the
    keys), `optimizer` the torch optimizer inside accelerate's.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    options = StateDictOptions(full_state_dict=True, cpu_offload=distributed, ignore_frozen_params=True)
    weights, optim = get_state_dict(model, optimizer, options=options)
    trainable = {name for name, p in inner.named_parameters() if p.requires_grad}  # not the buffers
    return {k: v for k, v in weights.items() if k in trainable}, optim


def write_shared(folder: Path, cfg: Any, weights: dict[str, torch.Tensor], optim: dict[str, Any],
                 trainer: dict[str, Any], base: dict[str, str]) -> None:
    """The main process's part of a checkpoint (into a temporary folder): what `gather` returned, and trainer.json.
    A run's own tokenizer (random-init models) is copied in, so the checkpoint loads on its own."""
    if base.get("tokenizer"):
        shutil.copytree(base["tokenizer"], folder / "tokenizer", ignore=shutil.ignore_patterns(".*"))
        base = {**base, "tokenizer": "tokenizer"}
    checkpoint.write(folder, weights, cfg, base)
    (folder / STATE).mkdir(parents=True, exist_ok=True)
    torch.save(optim, folder / STATE / "optimizer.pt")
    (folder / STATE / "trainer.json").write_text(json.dumps(trainer, indent=2), encoding="utf-8")


def write_rng(folder: Path, rank: int) -> None:
    """This process's RNG state (safetensors)."""
    from safetensors.torch import save_file

    (folder / STATE).mkdir(parents=True, exist_ok=True)
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(tensors, str(folder / STATE / f"rng_{rank}.safetensors"))


def finish(partial: Path, final: Path, output: Path, keep_last: int) -> None:
    """Rename the complete temporary folder into place and drop all but the newest `keep_last` checkpoints."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    if keep_last:
        for old in list_checkpoints(output)[:-keep_last]:
            shutil.rmtree(old)


def read_trainer(folder: Path) -> dict[str, Any]:
    path = folder / STATE / "trainer.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable trainer state ({exc})", path=path, fix="resume from another checkpoint") from exc


def check_compatible(folder: Path, model_cfg: Any, trainer: dict[str, Any], run: dict[str, Any]) -> None:
    """InputError naming every key where the checkpoint and the config disagree (model and data order)."""
    saved_cfg, _ = checkpoint.read_config(folder)
    ours, theirs = model_cfg.to_json(), saved_cfg.to_json()
    diffs = [f"model.config.{k}: checkpoint {theirs.get(k)!r}, config {ours.get(k)!r}"
             for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
    diffs += [f"{k}: checkpoint {trainer['run'].get(k)!r}, config {v!r}" for k, v in run.items()
              if trainer.get("run", {}).get(k) != v]
    if diffs:
        raise InputError(f"the checkpoint does not match the config ({'; '.join(diffs[:6])})", path=folder,
                         fix="resume with the config it was trained with (config.resolved.yaml beside it), "
                             "or train into a new --output")


def restore_optimizer(folder: Path, model: Any, optimizer: Any) -> None:
    """Load the optimiser state of a checkpoint into the prepared model's optimiser (each process takes its shard
    under FSDP). Call after `accelerator.prepare`: FSDP replaces the parameters the optimiser holds."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    path = folder / STATE / "optimizer.pt"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, refused pickle, missing file: all say the same to the user
        raise InputError(f"unreadable optimiser state ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
                         path=path, fix=f"{checkpoint.DAMAGED}, or resume from another checkpoint") from exc
    try:
        set_optimizer_state_dict(model, optimizer, saved, options=StateDictOptions(full_state_dict=True))
    except (KeyError, ValueError, RuntimeError, AssertionError) as exc:
        raise InputError(f"the optimiser state does not fit this model ({type(exc).__name__}: {exc})", path=path,
                         fix="resume with the config the checkpoint was trained with, or train into a new "
                             "--output") from exc


def restore_rng(folder: Path, rank: int) -> None:
    """This process's RNG state, when the checkpoint has one for its rank (a run resumed with more processes
    starts the new ones from their seeds)."""
    rng_file = folder / STATE / f"rng_{rank}.safetensors"
    if rng_file.is_file():
        rng = checkpoint.read_safetensors(rng_file)
        torch.set_rng_state(rng["torch"])
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda_")]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step (appended); optional TensorBoard mirror."""

    def __init__(self, output: Path, *, tensorboard: bool = False, start: int = 0) -> None:
        """`start`: the step a resumed run continues from; TensorBoard hides any events logged after it by the
        interrupted run (as truncate_after does for metrics.jsonl). Without the tensorboard package, asking for
        TensorBoard is a MissingExtra naming affectgpt[train]."""
        self.path = output / METRICS
        self.writer = None
        if tensorboard:
            from affectgpt.extras import require

            require("tensorboard", extra="train")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output / "tensorboard"), purge_step=start + 1 if start else None)

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (a run killed after its last checkpoint), so resume never duplicates."""
        if not self.path.is_file():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        from affectgpt.io.atomic import write_text

        write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self.writer.add_scalar(f"train/{key}", value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
