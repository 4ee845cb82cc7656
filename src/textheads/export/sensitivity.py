"""How much each of the encoder's matrix products moves the outputs when it alone is int8.

One ONNX Runtime session answers for every product: the fp32 graph gets, for
each weight MatMul, the error that dynamic int8 quantisation would add (its
input quantised to uint8 over the whole tensor, as `DynamicQuantizeLinear`
does; its weight to 7-bit integers per output channel), scaled by a gate from
an extra graph input. Opening one gate at a time ranks the products.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

GATES = "textheads_quantization_gates"


def weight_matmuls(graph: Path) -> dict[str, int]:
    """The MatMul nodes with a constant weight (the encoder's projections), in graph order,
    each with its weight's size."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    sizes = {tensor.name: int(np.prod(tensor.dims)) for tensor in model.graph.initializer}
    return {node.name: sizes[node.input[1]] for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in sizes}


def fake_quantize_weight(weight: np.ndarray) -> np.ndarray:
    """The weight after symmetric quantisation to [-64, 64] per output channel (the last
    axis), as ONNX Runtime's `reduce_range` does it."""
    scale = np.abs(weight).max(axis=0, keepdims=True) / 64.0
    scale[scale == 0] = 1.0
    return (np.clip(np.round(weight / scale), -64, 64) * scale).astype(weight.dtype)


def gated_graph(graph: Path, output: Path, nodes: list[str]) -> None:
    """Write a copy of `graph` whose `nodes` carry their int8 error times a gate (input `GATES`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(graph))
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    model.graph.input.append(helper.make_tensor_value_info(GATES, TensorProto.FLOAT, [len(nodes)]))
    index = {name: i for i, name in enumerate(nodes)}
    rewritten = []
    for node in model.graph.node:
        if node.name not in index:
            rewritten.append(node)
            continue
        i, (x, w), y = index[node.name], node.input, node.output[0]
        weight = numpy_helper.to_array(weights[w])
        p = f"textheads_gate{i}_"
        model.graph.initializer.append(numpy_helper.from_array(fake_quantize_weight(weight) - weight, p + "dw"))
        model.graph.initializer.append(numpy_helper.from_array(np.array([i], dtype=np.int64), p + "i"))
        rewritten += [
            helper.make_node("Gather", [GATES, p + "i"], [p + "g"], axis=0),
            helper.make_node("DynamicQuantizeLinear", [x], [p + "xq", p + "xs", p + "xz"]),
            helper.make_node("DequantizeLinear", [p + "xq", p + "xs", p + "xz"], [p + "xd"]),
            helper.make_node("Sub", [p + "xd", x], [p + "dx"]),
            helper.make_node("Mul", [p + "dx", p + "g"], [p + "gdx"]),
            helper.make_node("Add", [x, p + "gdx"], [p + "x"]),
            helper.make_node("MatMul", [p + "x", w], [p + "y0"]),
            helper.make_node("MatMul", [p + "x", p + "dw"], [p + "y1"]),
            helper.make_node("Mul", [p + "y1", p + "g"], [p + "gy1"]),
            helper.make_node("Add", [p + "y0", p + "gy1"], [y], name=node.name),
        ]
    del model.graph.node[:]
    model.graph.node.extend(rewritten)
    onnx.save(model, str(output))


def rank_by_sensitivity(nodes: dict[str, int], deviation: Callable[[np.ndarray], float]) -> list[str]:
    """The nodes (name: weight size) from the best to the worst to quantise: by how far each
    alone moves the outputs (`deviation(gates)`, with one gate open) per weight quantised."""
    names = list(nodes)
    scores = []
    for i, name in enumerate(names):
        gates = np.zeros(len(names), dtype=np.float32)
        gates[i] = 1.0
        scores.append(deviation(gates) / nodes[name])
    return [names[i] for i in np.argsort(scores, kind="stable")]
