"""The model: one pretrained encoder, one pooling step, one small module per head.

It is a `transformers.PreTrainedModel`, so it saves as a standard model
directory (`config.json` with the head specs, `model.safetensors`) and loads
without unpickling anything.
"""

from __future__ import annotations

from functools import cached_property

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from textheads.config import RunConfig
from textheads.data.dataset import LabelledData, require_labelled_rows
from textheads.encoder import (
    POOLING_WIDTH,
    check_max_length,
    encoder_layers,
    load_encoder,
    pool,
    pooled_layer_count,
)
from textheads.heads import Head, build_head
from textheads.model_config import TextHeadsConfig, model_config_for, target_stats
from textheads.specs import HeadSpec

__all__ = ["TextHeadsConfig", "TextHeadsModel", "build_model", "register_auto_classes"]


class TextHeadsModel(PreTrainedModel):
    """Encoder + heads. `forward` returns each head's raw output (logits or standardised value)."""

    config_class = TextHeadsConfig
    # Models saved before heads had an input standardisation load with the identity one.
    _keys_to_ignore_on_load_missing = [r"\.input_shift$", r"\.input_scale$"]  # noqa: RUF012 - transformers reads a list
    base_model_prefix = "textheads"

    def __init__(self, config: TextHeadsConfig, encoder: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        if encoder is None:
            encoder = AutoModel.from_config(AutoConfig.for_model(**config.encoder))
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({spec.name: build_head(spec, hidden, self.heads_input_size) for spec in self.specs.values()})
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # Only head layers are new; the encoder keeps its pretrained weights.
        if isinstance(module, (nn.Linear, nn.Conv1d)) and any(module is m for m in self.heads.modules()):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, Head):
            # Identity standardisation, also for model directories saved before it existed.
            module.input_shift.zero_()
            module.input_scale.fill_(1.0)

    @cached_property
    def specs(self) -> dict[str, HeadSpec]:
        """Head specs by name, in output order."""
        return self.config.specs

    def refresh_specs(self) -> None:
        """Re-read the specs after `config.head_specs` changed (e.g. new thresholds)."""
        self.__dict__.pop("specs", None)

    @property
    def heads_input_size(self) -> int:
        """Width of the pooled vector the (non-convolutional) heads read."""
        return self.encoder.config.hidden_size * POOLING_WIDTH[self.config.pooling] * self.config.pool_layers

    @property
    def reads_tokens(self) -> bool:
        """True when some head reads token states (so pooled vectors alone do not suffice)."""
        return any(spec.reads_tokens for spec in self.specs.values())

    def encode_tokens(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled vectors, last token states) of a batch."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        layers = self.config.pool_layers
        output = self.encoder(**kwargs, output_hidden_states=layers > 1)
        states = output.hidden_states[-layers:] if layers > 1 else (output.last_hidden_state,)
        pooled = torch.cat([pool(state, attention_mask, self.config.pooling) for state in states], dim=-1)
        return pooled, output.last_hidden_state

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        window_document: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pooled encoder output, one vector per text (its windows' combined, with `window_document`)."""
        pooled = self.encode_tokens(input_ids, attention_mask, token_type_ids)[0]
        return pooled if window_document is None else combine_windows(pooled, window_document, self.config.window_pooling)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        window_document: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Each head's raw output, one row per text.

        `window_document` (under `long_text: windows`): rows are windows, and row i belongs to
        text `window_document[i]` of the batch (texts numbered 0, 1, ... in order, each text's
        windows together). The windows' pooled vectors are combined per text (mean or max,
        `config.window_pooling`) before the heads; a convolutional head takes the maximum of its
        features over all the text's windows, as it does over one window's tokens.
        """
        pooled, tokens = self.encode_tokens(input_ids, attention_mask, token_type_ids)
        if window_document is None:
            return self.forward_heads(pooled, tokens, attention_mask)
        documents = combine_windows(pooled, window_document, self.config.window_pooling)
        outputs = {}
        for name, head in self.heads.items():
            if self.specs[name].reads_tokens:
                outputs[name] = head.classify(combine_windows(head.features(tokens, attention_mask), window_document, "max"))
            else:
                outputs[name] = head(documents)
        return outputs

    def forward_heads(
        self,
        pooled: torch.Tensor,
        tokens: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Each head's raw output from pooled vectors (and token states, for convolutional heads)."""
        outputs = {}
        for name, head in self.heads.items():
            if self.specs[name].reads_tokens:
                if tokens is None or attention_mask is None:
                    raise ValueError(f"head {name!r} reads token states; pass tokens and attention_mask")
                outputs[name] = head(tokens, attention_mask)
            else:
                outputs[name] = head(pooled)
        return outputs

    def to_predictions(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Raw outputs → sigmoid probabilities, softmax probabilities, or values in user units."""
        result = {}
        for name, output in outputs.items():
            kind = self.specs[name].kind
            if kind == "multilabel":
                result[name] = torch.sigmoid(output)
            elif kind == "multiclass":
                result[name] = torch.softmax(output, dim=-1)
            else:
                mean, std = self.config.target_stats.get(name, (0.0, 1.0))
                result[name] = output * std + mean
        return result

    def freeze(self, mode: str | int) -> None:
        """`none`, `encoder`, or k: train only the top k encoder layers (and the heads)."""
        self.encoder.requires_grad_(mode != "encoder")
        if isinstance(mode, int):
            self.encoder.requires_grad_(False)
            layers = encoder_layers(self.encoder)
            for layer in layers[len(layers) - mode :] if mode else []:
                layer.requires_grad_(True)

    @property
    def encoder_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.encoder.parameters())


def combine_windows(values: torch.Tensor, window_document: torch.Tensor, how: str) -> torch.Tensor:
    """Rows of `values` (one per window) combined into one row per text, by `how` (mean or max).

    Written with a comparison matrix and a matrix product rather than a scatter, so that it
    exports to ONNX with a dynamic number of texts and windows."""
    texts = window_document[-1] + 1  # texts are numbered in order: the last window's is the highest
    belongs = window_document.unsqueeze(0) == torch.arange(texts, device=values.device).unsqueeze(1)  # (texts, windows)
    if how == "max":
        spread = values.unsqueeze(0).masked_fill(~belongs.unsqueeze(-1), torch.finfo(values.dtype).min)
        return spread.amax(dim=1)
    weights = belongs.to(values.dtype)
    return (weights @ values) / weights.sum(dim=1, keepdim=True)


def register_auto_classes() -> None:
    """Let `AutoConfig`/`AutoModel.from_pretrained` open textheads model directories.

    Done on `import textheads` as soon as transformers' auto classes are imported (see
    `textheads.auto_classes`), and at the end of this module's import.
    """
    AutoConfig.register("textheads", TextHeadsConfig, exist_ok=True)
    AutoModel.register(TextHeadsConfig, TextHeadsModel, exist_ok=True)


def build_model(run_config: RunConfig, specs: list[HeadSpec], train_data: LabelledData) -> tuple[TextHeadsModel, PreTrainedTokenizerBase]:
    """A new model for `run_config`: its pretrained encoder, and new heads for `specs`
    (regression heads standardised with `train_data`'s targets). `model.pool_layers`
    becomes a number of hidden states here (`used_run_config` gives the run config with it)."""
    # Reading the file found a label for every head; holding out validation rows may
    # have taken a head's last ones (its targets would then have no mean: NaN outputs).
    require_labelled_rows(train_data, specs, after_split=True)
    model = run_config.model
    encoder, tokenizer = load_encoder(model.encoder)
    check_max_length(model.max_length, encoder.config.to_dict(), tokenizer, model.encoder)
    pool_layers = pooled_layer_count(model.pool_layers, encoder, model.encoder)
    config = model_config_for(run_config, specs, encoder.config.to_dict(), target_stats(specs, train_data), pool_layers=pool_layers)
    return TextHeadsModel(config, encoder=encoder), tokenizer


# Importing this module imports the auto classes, which `textheads.auto_classes` waits for;
# when that happens mid-way through this import, the registration is done here instead.
register_auto_classes()
