"""The bodies the service reads and writes, as pydantic models built for one model.

The OpenAPI document is generated from these models, so it names the
model's heads and labels and the service's limits, and every answer of the
service is one of them. Request bodies are validated in two steps: pydantic
checks their shape (`PredictRequest`), then `check_request` checks what
depends on the model and the limits, with messages that name the heads and
labels; the document states both.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from textheads.specs import HeadSpec

NON_BLANK = r"[^ \t\n\r\f\v]"
"""A text holds a character other than white space. An explicit class, not `\\S`:
Python's and ECMA-262's regular expressions (the document's) agree on it."""


class Problem(BaseModel):
    field: str | None = Field(description="Where in the request the problem lies (`texts.2`, `thresholds.topics`, `body`, `X-API-Key`); null when it is not in the request.")
    message: str


class ErrorBody(BaseModel):
    """Every error answer: 401, 413, 422, 500, 503, 504."""

    detail: list[Problem]


def error_body(message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON of an `ErrorBody` with one problem."""
    return {"detail": [{"field": field, "message": message}]}


class PredictRequest(BaseModel):
    """The shape of a request; `request_model` documents what the model and the limits add."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(description="Texts to classify (at least one).")
    heads: list[str] | None = Field(default=None, description="Only these heads (default: all).")
    thresholds: dict[str, Any] | None = Field(
        default=None,
        description="Per multilabel head among those requested: one threshold for all its labels, or one per label "
        "(the others keep their stored thresholds), for this request only.",
    )


def request_model(specs: dict[str, HeadSpec], *, max_texts: int, max_chars: int) -> type[PredictRequest]:
    """`PredictRequest` with a document that names this model's heads, labels and the limits."""
    texts = {"type": "array", "minItems": 1, "maxItems": max_texts, "items": {"type": "string", "maxLength": max_chars, "pattern": NON_BLANK}}
    heads = {"type": "array", "minItems": 1, "items": {"enum": list(specs)}}
    threshold = {"type": "number", "minimum": 0, "maximum": 1}
    per_head = {
        name: {"anyOf": [threshold, {"type": "object", "properties": {label: threshold for label in spec.labels or []}, "additionalProperties": False}]}
        for name, spec in specs.items()
        if spec.kind == "multilabel"
    }
    thresholds = {"type": "object", "properties": per_head, "additionalProperties": False}
    # Thresholds only for heads requested: for each multilabel head, "if heads is a list
    # without it, thresholds do not name it".
    requested_only = [
        {
            "if": {"properties": {"heads": {"type": "array", "not": {"contains": {"const": name}}}}, "required": ["heads"]},
            "then": {"properties": {"thresholds": {"anyOf": [{"type": "null"}, {"not": {"required": [name]}}]}}},
        }
        for name in per_head
    ]

    def nullable(schema: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [schema, {"type": "null"}]}

    return create_model(  # type: ignore[no-any-return, call-overload]
        "PredictRequest",
        __base__=PredictRequest,
        __config__=ConfigDict(extra="forbid", json_schema_extra={"allOf": requested_only} if requested_only else None),
        texts=(Annotated[list[str], WithJsonSchema(texts)], PredictRequest.model_fields["texts"]),
        heads=(Annotated[list[str] | None, WithJsonSchema(nullable(heads))], PredictRequest.model_fields["heads"]),
        thresholds=(Annotated[dict[str, Any] | None, WithJsonSchema(nullable(thresholds))], PredictRequest.model_fields["thresholds"]),
    )


def check_request(request: PredictRequest, specs: dict[str, HeadSpec], *, max_texts: int, max_chars: int) -> tuple[int, str, str] | None:
    """(status, field, message) for a request of the right shape that the model or the limits refuse."""
    if not request.texts:
        return 422, "texts", "give at least one text"
    if len(request.texts) > max_texts:
        return 413, "texts", f"{len(request.texts)} texts is over the limit of {max_texts} per request"
    for i, text in enumerate(request.texts):
        if len(text) > max_chars:
            return 413, f"texts.{i}", f"text of {len(text)} characters is over the limit of {max_chars}"
        if not re.search(NON_BLANK, text):
            return 422, f"texts.{i}", "text is empty"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON can escape a lone surrogate; no tokenizer reads one
            return 422, f"texts.{i}", f"character {exc.start} is a lone surrogate (\\u{ord(text[exc.start]):04x}), not a Unicode character"
    if request.heads is not None:
        if not request.heads:
            return 422, "heads", "give at least one head, or leave heads out for all"
        for i, name in enumerate(request.heads):
            if name not in specs:
                return 422, f"heads.{i}", f"unknown head {name!r}; heads are {sorted(specs)}"
    for name, value in (request.thresholds or {}).items():
        problem = _check_thresholds(name, value, specs, request.heads)
        if problem is not None:
            return 422, f"thresholds.{name}", problem
    return None


def _check_thresholds(name: str, value: Any, specs: dict[str, HeadSpec], heads: list[str] | None) -> str | None:
    spec = specs.get(name)
    if spec is None or spec.kind != "multilabel":
        return f"thresholds apply to multilabel heads: {sorted(n for n, s in specs.items() if s.kind == 'multilabel')}"
    if heads is not None and name not in heads:
        return f"head {name!r} is not among the requested heads {heads}"
    values = value if isinstance(value, dict) else {"": value}
    unknown = sorted(set(values) - set(spec.labels or [])) if isinstance(value, dict) else []
    if unknown:
        return f"unknown labels {unknown}; the labels of {name!r} are {spec.labels}"
    if not all(_is_probability(v) for v in values.values()):
        return "give a number between 0 and 1, or an object of such numbers by label; thresholds must lie between 0 and 1"
    return None


def _is_probability(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0


def response_model(specs: dict[str, HeadSpec]) -> type[BaseModel]:
    """The body of a 200 answer of `/predict`: one record per text, with each requested head."""
    heads: dict[str, Any] = {f"head_{i}": (_head_output(spec), Field(default=None, alias=name)) for i, (name, spec) in enumerate(specs.items())}
    record = create_model(  # type: ignore[call-overload]
        "Prediction",
        __config__=ConfigDict(extra="forbid"),
        __doc__="One text's predictions: each requested head, and whether the text was cut to the model's length.",
        truncated=(bool, Field(description="Some of the text was not read: it was longer than the model reads (see `/model`: `max_length`, `long_text`).")),
        **heads,
    )
    return create_model("PredictResponse", __config__=ConfigDict(extra="forbid"), predictions=(list[record], ...))  # type: ignore[call-overload, valid-type]


def _head_output(spec: HeadSpec) -> type[BaseModel]:
    if spec.kind == "regression":
        return create_model(f"{spec.name}_value", __config__=ConfigDict(extra="forbid"), value=(float, ...))  # type: ignore[call-overload, no-any-return]
    labels = spec.labels or []
    probabilities = create_model(  # type: ignore[call-overload]
        f"{spec.name}_probabilities",
        __config__=ConfigDict(extra="forbid"),
        **{f"label_{i}": (Annotated[float, Field(ge=0, le=1)], Field(alias=label)) for i, label in enumerate(labels)},
    )
    label = Literal[tuple(labels)]  # type: ignore[valid-type]
    decision: Any = (list[label], Field(description="The labels over their thresholds.")) if spec.kind == "multilabel" else (label, Field(description="The most probable label."))
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{spec.name}_{spec.kind}",
        __config__=ConfigDict(extra="forbid"),
        probabilities=(probabilities, ...),
        **{"labels" if spec.kind == "multilabel" else "label": decision},
    )


class WorkerInfo(BaseModel):
    alive: bool = Field(description="Can take work: running, and not stuck in one batch past the time limit.")
    busy: bool = Field(description="Running a batch now.")


class Health(BaseModel):
    """`/health`: 200 while at least one model worker is alive, 503 when none is."""

    status: Literal["ok", "unavailable"]
    workers: list[WorkerInfo]
    pending_texts: int = Field(description="Texts waiting for a model pass.")


class HeadInfo(BaseModel):
    kind: Literal["multilabel", "multiclass", "regression"]
    labels: list[str] | None
    thresholds: dict[str, float] | None = Field(description="Multilabel heads: the stored threshold of each label.")


class ModelInfo(BaseModel):
    """`/model`: what the service runs and accepts. Names no local path."""

    textheads_version: str
    encoder: str = Field(description="The encoder's hub id, `default`, or only the final name of a local folder.")
    max_length: int = Field(description="Tokens the encoder reads at once.")
    long_text: str = Field(description="How a text longer than `max_length` is read: `truncate` (its start), `head_tail` (its start and end), or `windows` (all of it, in overlapping windows of `max_length`, up to the model's `max_windows`).")
    backend: str
    device: str = Field(description="Where the model runs: `cpu` or `cuda:N`.")
    precision: str = Field(description="What the model computes in: `fp32`, `fp16` or `bf16`.")
    model_workers: dict[str, int | bool]
    limits: dict[str, float | int]
    heads: dict[str, HeadInfo]
