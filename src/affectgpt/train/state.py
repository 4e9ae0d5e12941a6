"""Training state on disk: checkpoint folders (weights, optimiser, scheduler, RNG), their pruning, metrics.jsonl.

A checkpoint `<output>/checkpoint_<step:06d>/` is our model checkpoint (model/checkpoint.py: model.safetensors +
config.json, loadable for inference as is) plus `state/`: `optimizer.pt` (tensors and plain containers only,
read back with `torch.load(weights_only=True)`), `trainer.json` (step, scheduler, loss scaler, run facts) and
`rng_<rank>.safetensors` (each process's torch RNG). No pickled objects are ever loaded. A folder is written
under a temporary name and renamed when complete, so a killed run never leaves a half checkpoint to resume from.
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


def write_shared(folder: Path, model: Any, optimizer: Any, trainer: dict[str, Any], base: dict[str, str]) -> None:
    """The main process's part of a checkpoint (into a temporary folder)."""
    checkpoint.save(model, folder, base=base)
    (folder / STATE).mkdir(parents=True, exist_ok=True)
    torch.save(optimizer.state_dict(), folder / STATE / "optimizer.pt")
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


def restore(folder: Path, model: Any, optimizer: Any, scheduler: Any, rank: int) -> dict[str, Any]:
    """Load weights, optimiser, scheduler and this process's RNG from a checkpoint; returns trainer.json."""
    from safetensors.torch import load_file

    trainer = read_trainer(folder)
    checkpoint.load_weights(model, folder)
    state = torch.load(folder / STATE / "optimizer.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state)
    scheduler.load_state_dict(trainer["scheduler"])
    rng_file = folder / STATE / f"rng_{rank}.safetensors"
    if rng_file.is_file():
        rng = load_file(str(rng_file))
        torch.set_rng_state(rng["torch"])
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda_")]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
    return trainer


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
