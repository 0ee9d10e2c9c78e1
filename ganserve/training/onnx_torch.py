"""A frozen ONNX graph run by torch, so gradients flow through it: the evaluation classifier
(shipped as ONNX only) as the perceptual loss of projection. LPIPS-VGG is not available here
(no downloaded weights), and the project's own classifier knows the data it judges.

Only the operators of a small CNN are known (Conv, BatchNormalization, Relu, MaxPool,
Flatten, MatMul, Gemm, Add); another one is a clear error at load, never a silent guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn


def _pads(pads: list[int] | None) -> tuple[int, int]:
    pads = pads or [0, 0, 0, 0]
    if pads[:2] != pads[2:]:
        raise ValueError(f"asymmetric padding {pads} is not supported")
    return pads[0], pads[1]


def _conv(x, w, b=None, strides=(1, 1), pads=None, dilations=(1, 1), group=1, **_):
    return F.conv2d(x, w, b, tuple(strides), _pads(pads), tuple(dilations), group)


def _batchnorm(x, scale, bias, mean, var, epsilon=1e-5, **_):
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, epsilon)


def _maxpool(x, kernel_shape, strides=None, pads=None, **_):
    return F.max_pool2d(x, tuple(kernel_shape), tuple(strides or kernel_shape), _pads(pads))


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0, **_):
    out = alpha * ((a.T if transA else a) @ (b.T if transB else b))
    return out if c is None else out + beta * c


OPS: dict[str, Any] = {
    "Conv": _conv, "BatchNormalization": _batchnorm, "MaxPool": _maxpool, "Gemm": _gemm,
    "Relu": lambda x: F.relu(x), "MatMul": lambda a, b: a @ b, "Add": lambda a, b: a + b,
    "Flatten": lambda x, axis=1: torch.flatten(x, axis),
}


class OnnxModule(nn.Module):
    """``module(x)`` -> {output name: tensor}; the weights are frozen buffers."""

    def __init__(self, path: str | Path):
        super().__init__()
        model = onnx.load(str(path))
        graph = model.graph
        self._names: dict[str, str] = {}
        for i, t in enumerate(graph.initializer):
            buffer = f"w{i}"
            self.register_buffer(buffer, torch.from_numpy(numpy_helper.to_array(t).copy()))
            self._names[t.name] = buffer
        self.nodes = [(n.op_type, list(n.input), list(n.output),
                       {a.name: helper.get_attribute_value(a) for a in n.attribute})
                      for n in graph.node]
        unknown = sorted({op for op, *_ in self.nodes} - set(OPS))
        if unknown:
            raise ValueError(f"{Path(path).name}: operators {', '.join(unknown)} are not "
                             "supported by ganserve.training.onnx_torch")
        self.inputs = [i.name for i in graph.input if i.name not in self._names]
        self.outputs = [o.name for o in graph.output]
        self.requires_grad_(False)

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        env: dict[str, torch.Tensor] = {k: getattr(self, b) for k, b in self._names.items()}
        env.update(zip(self.inputs, inputs))
        for op, ins, outs, attrs in self.nodes:
            result = OPS[op](*(env[i] for i in ins if i), **attrs)
            env[outs[0]] = result
        return {name: env[name] for name in self.outputs}
