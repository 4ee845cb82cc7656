"""int8 quantisation that is checked against the fp32 model before it is kept.

The recipe is ONNX Runtime's dynamic quantisation of the encoder's matrix
products (weights to 7-bit integers per output channel, activations to uint8
per batch); the heads stay fp32. Its answers are compared with the fp32
PyTorch model on sample texts (`textheads.export.agreement`). When a classification
head agrees on fewer than `min_agreement` of its decisions, the products are ranked by
how far each alone moves the outputs per weight (`textheads.export.sensitivity`),
and the largest set of the best-ranked ones that still reaches the bar is
found by bisection, each step measured on the real int8 graph, down to half
of the weights in int8. If none reaches it, the export is refused with the
figures, unless forced.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from textheads.errors import ConfigError, TextheadsError
from textheads.export.agreement import HeadAgreement, compare_outputs, falls_short, format_report
from textheads.export.samples import SAMPLE_FILE, choose_sample, read_sample_texts
from textheads.export.sensitivity import GATES, gated_graph, rank_by_sensitivity, weight_matmuls
from textheads.inference.backends import OnnxBackend, TorchBackend
from textheads.inference.predict import predict_outputs
from textheads.model import TextHeadsModel

MAX_CALIBRATION_TEXTS = 1024
MIN_INT8_SHARE = 0.5
"""An int8 graph with fewer of the encoder's weights in int8 gains too little to be worth its error."""
RANKING_TEXTS = 64
"""Texts used to rank the products (each measured alone): enough to order them, cheap to repeat."""
METHOD = "ONNX Runtime dynamic int8: weights per output channel in 7 bits (reduce_range), activations uint8 per batch"

Report = dict[str, HeadAgreement]


class QuantizationError(TextheadsError, ValueError):
    """No int8 graph reaches the required agreement with the fp32 model."""


def sample_texts_for(model_dir: Path, model: TextHeadsModel, calibration: str | Path | Sequence[str] | None, *, force: bool) -> tuple[list[str], str] | None:
    """(texts to check an int8 export on, where they came from), or None with `force` and none at hand."""
    if calibration is None:
        texts = read_sample_texts(model_dir)
        if texts is not None:
            return texts, f"{len(texts)} sample texts stored with the model ({SAMPLE_FILE})"
        if force:
            return None
        columns = model.config.text_columns
        raise ConfigError(
            f"{model_dir} has no stored sample texts ({SAMPLE_FILE}; models trained before textheads stored them have none) "
            f"to check the int8 export against the fp32 model. Pass --calibration FILE (a data file with the text column(s) "
            f"{columns}, e.g. the validation file; calibration= in Python), or --force to export without the check."
        )
    if isinstance(calibration, (str, Path)):
        from textheads.data.dataset import load_texts

        texts = load_texts(calibration, model.config.text_columns)
        where = f"texts of {Path(calibration).name}"  # the name only: the manifest travels with the export
    else:
        texts = list(calibration)
        where = "texts given"
    if not texts:
        raise ConfigError(f"the calibration {'file ' + str(calibration) if isinstance(calibration, (str, Path)) else 'list'} has no texts")
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()), None)
    if bad is not None:
        raise ConfigError(f"calibration text {bad} is {texts[bad]!r}; calibration texts must be non-empty strings")
    chosen = choose_sample(texts, seed=0, limit=MAX_CALIBRATION_TEXTS)
    return chosen, f"{len(chosen)} of the {len(texts)} {where}" if len(chosen) < len(texts) else f"the {len(texts)} {where}"


def quantize_checked(
    graph: Path,
    inputs: list[str],
    model: TextHeadsModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: tuple[list[str], str] | None,
    *,
    min_agreement: float,
    force: bool,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Replace the fp32 `graph` by its int8 version; returns the manifest's record of the
    quantisation and of its measured agreement."""
    nodes = weight_matmuls(graph)
    if not nodes:
        raise ConfigError("the encoder has no matrix products with constant weights to quantise; export it without --quantize")
    everything = list(nodes)
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        shutil.copyfile(graph, fp32)
        if texts is None:
            _quantize(fp32, graph, everything)
            echo("int8: not checked against the fp32 model (--force, and no sample texts or --calibration)")
            return _record(nodes, everything, None)
        sample, source = texts
        checker = _Checker(fp32, inputs, Path(scratch), model, tokenizer, sample)
        echo(f"Checking int8 against the fp32 model on {source}")
        report = checker.measure(everything)
        echo(f"int8, all {len(nodes)} matrix products of the encoder:\n{format_report(report)}")
        chosen, chosen_report = everything, report
        short = falls_short(report, min_agreement)
        if short:
            echo(f"Below {min_agreement:.2%} on {', '.join(short)}: looking for the matrix products to keep in fp32")
            found, floor = _search(checker, nodes, min_agreement, echo)
            if found is not None:
                chosen, chosen_report = found
                echo(f"int8 on {len(chosen)} of {len(nodes)} matrix products ({_share(nodes, chosen):.0%} of their weights; the others stay fp32):\n{format_report(chosen_report)}")
            elif force:
                echo(f"No int8 graph reaches {min_agreement:.2%}; exporting the fully quantised one anyway (--force)")
            else:
                floor_nodes, floor_report = floor
                raise QuantizationError(
                    f"the int8 export would change answers (measured on {source}):\n"
                    f"with all {len(nodes)} matrix products of the encoder in int8,\n{format_report(report)}\n"
                    f"with the {len(floor_nodes)} least sensitive ones ({_share(nodes, floor_nodes):.0%} of the weights),\n{format_report(floor_report)}\n"
                    f"so no int8 graph with at least {MIN_INT8_SHARE:.0%} of the weights in int8 reaches {min_agreement:.2%} on every "
                    "classification head. Export fp32 (leave out --quantize), lower the bar with --min-agreement, "
                    "or pass --force to export the fully quantised graph anyway."
                )
        _quantize(fp32, graph, chosen)
    agreement = {"source": source, "texts": len(sample), "min_agreement": min_agreement, "forced": force, "heads": {name: head.to_json() for name, head in chosen_report.items()}}
    return _record(nodes, chosen, agreement)


def _search(checker: _Checker, nodes: dict[str, int], min_agreement: float, echo: Callable[[str], None]) -> tuple[tuple[list[str], Report] | None, tuple[list[str], Report]]:
    """(the most products, best to quantise first, whose int8 graph reaches the bar, or None;
    the smallest set tried). Bisection between `MIN_INT8_SHARE` of the weights and all of them."""
    order = checker.ranked(nodes)
    low = next(k for k in range(1, len(order) + 1) if _share(nodes, order[:k]) >= MIN_INT8_SHARE)
    floor = (order[:low], checker.measure(order[:low]))
    echo(f"  {low} of {len(order)} in int8 ({_share(nodes, order[:low]):.0%} of the weights): {_verdict(floor[1], min_agreement)}")
    if falls_short(floor[1], min_agreement):
        return None, floor
    best, high = floor, len(order)
    while high - low > 1:
        middle = (low + high) // 2
        report = checker.measure(order[:middle])
        echo(f"  {middle} of {len(order)} in int8 ({_share(nodes, order[:middle]):.0%} of the weights): {_verdict(report, min_agreement)}")
        if falls_short(report, min_agreement):
            high = middle
        else:
            low, best = middle, (order[:middle], report)
    return best, floor


def _verdict(report: Report, min_agreement: float) -> str:
    short = falls_short(report, min_agreement)
    return f"below the bar on {', '.join(short)}" if short else "reaches the bar"


def _share(nodes: dict[str, int], chosen: list[str]) -> float:
    return sum(nodes[name] for name in chosen) / sum(nodes.values())


class _Checker:
    """Measures int8 graphs of the fp32 graph against the fp32 PyTorch model's outputs."""

    def __init__(self, fp32: Path, inputs: list[str], scratch: Path, model: TextHeadsModel, tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> None:
        self.fp32, self.inputs, self.scratch, self.model, self.tokenizer, self.texts = fp32, inputs, scratch, model, tokenizer, texts
        self.reference = predict_outputs(TorchBackend(model), tokenizer, texts).outputs

    def measure(self, nodes: list[str]) -> Report:
        candidate = self.scratch / "candidate.onnx"
        _quantize(self.fp32, candidate, nodes)
        backend = OnnxBackend.for_graph(candidate, self.model.config, self.inputs)
        return compare_outputs(backend.specs, self.reference, predict_outputs(backend, self.tokenizer, self.texts).outputs)

    def ranked(self, nodes: dict[str, int]) -> list[str]:
        gated = self.scratch / "gated.onnx"
        gated_graph(self.fp32, gated, list(nodes))
        backend = _GatedBackend(gated, self.model, self.inputs, len(nodes))
        texts = self.texts[:RANKING_TEXTS]
        base = predict_outputs(backend, self.tokenizer, texts).outputs
        scale = {name: self.model.config.target_stats.get(name, (0.0, 1.0))[1] for name in base}

        def deviation(gates: np.ndarray) -> float:
            backend.gates = gates
            outputs = predict_outputs(backend, self.tokenizer, texts).outputs
            return float(sum(np.abs(outputs[name] - base[name]).mean() / scale[name] for name in base))

        return rank_by_sensitivity(nodes, deviation)


class _GatedBackend(OnnxBackend):
    """Runs a gated graph (see `textheads.export.sensitivity`) with the gates it is given."""

    def __init__(self, graph: Path, model: TextHeadsModel, inputs: list[str], count: int) -> None:
        # The gated graph takes the token inputs and then the gates (appended last).
        self._start(graph, model.config, [*inputs, GATES], threads=None)
        self.token_inputs = inputs
        self.gates = np.zeros(count, dtype=np.float32)

    def _feed(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        return {**{name: batch[name].numpy().astype(np.int64) for name in self.token_inputs}, GATES: self.gates}


def _quantize(source: Path, output: Path, nodes: list[str]) -> None:
    """Dynamic int8 of exactly `nodes` (weight MatMuls), or a copy when there are none."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not nodes:
        shutil.copyfile(source, output)
        return
    root = logging.getLogger()
    disabled, root.disabled = root.disabled, True  # onnxruntime logs a pre-processing hint at WARNING on the root logger
    try:
        # Named nodes, not op types: the quantiser turns every Gemm (the heads' layers) into a
        # MatMul first, and op types alone would quantise the heads too.
        quantize_dynamic(str(source), str(output), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True, nodes_to_quantize=nodes)
    finally:
        root.disabled = disabled


def _record(nodes: dict[str, int], chosen: list[str], agreement: dict[str, Any] | None) -> dict[str, Any]:
    kept = [name for name in nodes if name not in set(chosen)]
    return {
        "quantization": {"method": METHOD, "int8_matmuls": len(chosen), "encoder_matmuls": len(nodes), "int8_weight_share": round(_share(nodes, chosen), 4), "fp32_matmuls": kept},
        "agreement": agreement,
    }
