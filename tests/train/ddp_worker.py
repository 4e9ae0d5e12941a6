"""One process of the DDP test: `python -m torch.distributed.run --nproc-per-node 2 ddp_worker.py OUT k=v...`.

Trains the tiny in-test setup (tinytrain.py) with the given overrides; the main process writes the per-step losses
to OUT/losses.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tinytrain import tiny_config, tiny_parts

from affectgpt.train.loop import train


def main() -> None:
    torch.set_num_threads(1)
    output = Path(sys.argv[1])
    overrides = dict(item.split("=", 1) for item in sys.argv[2:])
    result = train(tiny_config(**overrides), output, parts=tiny_parts)
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return
    (output / "losses.json").write_text(json.dumps(result.losses), encoding="utf-8")


if __name__ == "__main__":
    main()
