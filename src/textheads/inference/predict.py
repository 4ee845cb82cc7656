"""The inference path shared by the Python API, the CLI and evaluation.

Texts are tokenised once, sorted by length and padded per batch; one encoder
pass feeds every head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from textheads.decisions import decide
from textheads.errors import ModelOutputError
from textheads.inference.backends import Backend, evaluating, raw_outputs
from textheads.inference.batching import Tokenized, run_in_batches, tokenize
from textheads.model import TextHeadsModel
from textheads.model_config import long_text_of
from textheads.specs import HeadSpec

__all__ = ["Predictions", "empty_outputs", "pad_id", "predict_outputs", "require_finite", "run_heads", "to_records", "to_user_outputs"]


@dataclass
class Predictions:
    """Per-head outputs for many texts, in input order."""

    outputs: dict[str, np.ndarray]
    """multilabel (n, L) and multiclass (n, C) probabilities; regression (n,) values; all finite."""
    truncated: np.ndarray
    """bool (n,): texts of which some tokens were not read (longer than the model's max length,
    or under `long_text: windows` than its `max_windows` windows)."""
    unread: np.ndarray | None = None
    """float (n,): the share of each text's tokens that were not read."""


def empty_outputs(specs: dict[str, HeadSpec], n: int) -> dict[str, np.ndarray]:
    """Zeroed per-head output arrays for `n` texts: (n, outputs), or (n,) for regression."""
    return {name: np.zeros((n, spec.num_outputs) if spec.kind != "regression" else (n,), dtype=np.float32) for name, spec in specs.items()}


def run_heads(
    model: TextHeadsModel,
    tokens: Tokenized,
    pad_id: int,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    description: str = "Predicting",
) -> dict[str, np.ndarray]:
    """Raw head outputs (logits, standardised values) for pre-tokenised texts, in input order,
    computed on the model's device."""

    def run(batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {name: values.cpu().numpy() for name, values in raw_outputs(model, batch).items()}

    with evaluating(model), torch.inference_mode():
        out = empty_outputs(model.specs, len(tokens))
        return run_in_batches(tokens, pad_id, run, out, batch_size=batch_size, show_progress=show_progress, description=description)


def to_user_outputs(model: TextHeadsModel, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw outputs → probabilities and values in the user's units."""
    with torch.inference_mode():
        converted = model.to_predictions({name: torch.from_numpy(values) for name, values in raw.items()})
    return {name: values.numpy() for name, values in converted.items()}


def predict_outputs(
    backend: Backend,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> Predictions:
    """Run every head on `texts` (length-sorted batches, padded per batch), in input order."""
    tokens = tokenize(tokenizer, texts, backend.max_length, long_text_of(backend.config))
    out = empty_outputs(backend.specs, len(texts))
    outputs = run_in_batches(tokens, pad_id(tokenizer), backend.run, out, batch_size=batch_size, show_progress=show_progress)
    require_finite(outputs)
    return Predictions(outputs, tokens.truncated, tokens.unread)


def require_finite(outputs: dict[str, np.ndarray]) -> None:
    """Raise `ModelOutputError` when a head gave NaN or infinity, which no answer (and
    no JSON) can carry."""
    for name, values in outputs.items():
        finite = np.isfinite(values)
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            raise ModelOutputError(
                f"head {name!r} gave a non-finite output for text {row} (of {len(values)}): "
                f"{values[row].tolist()}. The model is broken (training diverged, or a regression "
                "target near the float32 limit); retrain it"
            )


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The tokenizer's padding id (0 when it defines none)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def to_records(specs: dict[str, HeadSpec], predictions: Predictions, texts: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One JSON-ready record per text: each head's probabilities (or value) and decision.

    The outputs are finite: both makers of `Predictions` (`predict_outputs`, the service's
    batcher) check them with `require_finite`."""
    records = []
    for row in range(len(predictions.truncated)):
        record: dict[str, Any] = {}
        if texts is not None:
            record["text"] = texts[row]
        for name, spec in specs.items():
            output = predictions.outputs[name][row]
            entry: dict[str, Any] = {}
            if spec.kind == "regression":
                entry["value"] = round(float(output), 6)
            else:
                entry["probabilities"] = {label: round(float(p), 6) for label, p in zip(spec.labels or [], output, strict=True)}
                entry["labels" if spec.kind == "multilabel" else "label"] = decide(spec, output)
            record[name] = entry
        record["truncated"] = bool(predictions.truncated[row])
        records.append(record)
    return records
