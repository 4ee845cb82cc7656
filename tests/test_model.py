"""The model: output kinds, save/load identity, freezing, and the classifier API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import LEVELS, make_rows
from textheads import NotFittedError, TextClassifier
from textheads.errors import ModelLoadError
from textheads.saving import load_model_dir


def _heads() -> dict:
    return {
        "topics": {"kind": "multilabel", "hidden_sizes": [16]},
        "level": {"kind": "multiclass", "labels": LEVELS},
        "score": {"kind": "regression"},
    }


@pytest.fixture()
def fitted(tiny_encoder_dir: Path) -> TextClassifier:
    clf = TextClassifier(_heads(), encoder=str(tiny_encoder_dir), max_length=32, validation_split=0, train={"epochs": 1, "batch_size": 16, "learning_rate": 1e-3})
    return clf.fit(make_rows(48), show_progress=False, echo=lambda _: None)


def test_output_kinds(fitted: TextClassifier) -> None:
    texts = ["python code bug", "pasta oven salt", "sleep doctor"]
    proba = fitted.predict_proba(texts)
    assert proba["topics"].shape == (3, 3)
    assert proba["level"].shape == (3, 3)
    assert proba["score"].shape == (3,)
    # Multiclass: a softmax per row. Multilabel: independent sigmoids, not summing to 1.
    assert np.allclose(proba["level"].sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(proba["topics"].sum(axis=1), 1.0, atol=1e-3)
    assert ((proba["topics"] > 0) & (proba["topics"] < 1)).all()
    assert fitted.heads_["topics"].labels == ["code", "cook", "health"]


def test_predict_gives_decisions(fitted: TextClassifier) -> None:
    [result] = fitted.predict(["python code bug"])
    proba = fitted.predict_proba(["python code bug"])
    thresholds = fitted.heads_["topics"].thresholds()
    expected_tags = [label for label, p, t in zip(["code", "cook", "health"], proba["topics"][0], thresholds, strict=True) if p >= t]
    assert result["topics"] == expected_tags
    assert result["level"] == LEVELS[int(np.argmax(proba["level"][0]))]
    assert result["score"] == pytest.approx(float(proba["score"][0]))


def test_regression_is_in_the_users_units(fitted: TextClassifier) -> None:
    stats = fitted.model_.config.target_stats["score"]
    scores = [r["score"] for r in make_rows(48) if "score" in r]
    assert stats[0] == pytest.approx(np.mean(scores), rel=1e-5)
    assert stats[1] == pytest.approx(np.std(scores), rel=1e-5)
    # An untrained-ish head predicts near the target mean, not near 0.
    assert abs(float(fitted.predict_proba(["python"])["score"][0]) - stats[0]) < 3 * stats[1]


def test_save_then_load_gives_identical_predictions(fitted: TextClassifier, tmp_path: Path) -> None:
    texts = ["python code bug", "pasta oven salt and garlic", "中文 学习", "Grüße aus dem Süden"]
    fitted.save(tmp_path / "saved")
    saved_files = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert "config.json" in saved_files and "model.safetensors" in saved_files
    assert not any(name.endswith((".bin", ".pkl", ".pt")) for name in saved_files)
    loaded = TextClassifier.load(tmp_path / "saved")
    before, after = fitted.predict_proba(texts), loaded.predict_proba(texts)
    for head in before:
        np.testing.assert_array_equal(before[head], after[head])
    assert loaded.heads_ == fitted.heads_


def test_thresholds_are_stored_and_overridable(fitted: TextClassifier, tmp_path: Path) -> None:
    fitted.set_thresholds("topics", {"code": 0.0, "cook": 1.0, "health": 1.0})
    assert fitted.predict(["anything"])[0]["topics"] == ["code"]
    fitted.save(tmp_path / "m")
    assert TextClassifier.load(tmp_path / "m").predict(["anything"])[0]["topics"] == ["code"]
    with pytest.raises(ValueError, match="no head named 'nope'"):
        fitted.set_thresholds("nope", 0.3)


def test_unfitted_classifier_says_so() -> None:
    clf = TextClassifier({"t": {"kind": "multilabel"}})
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clf.predict(["x"])


def test_empty_text_is_rejected_at_prediction(fitted: TextClassifier) -> None:
    with pytest.raises(ValueError, match="text 1 is empty"):
        fitted.predict(["fine", "  "])


def test_loading_a_non_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a textheads model directory"):
        load_model_dir(tmp_path)


@pytest.mark.parametrize(("mode", "trainable_layers"), [("none", 2), ("encoder", 0), (1, 1), (0, 0)])
def test_freezing(fitted: TextClassifier, mode: object, trainable_layers: int) -> None:
    model = fitted.model_
    model.freeze(mode)
    layers = model.encoder.encoder.layer
    assert sum(any(p.requires_grad for p in layer.parameters()) for layer in layers) == trainable_layers
    assert all(p.requires_grad for p in model.heads.parameters())
    if mode != "none":
        assert not model.encoder.embeddings.word_embeddings.weight.requires_grad


def test_frozen_encoder_weights_do_not_change(tiny_encoder_dir: Path) -> None:
    clf = TextClassifier(_heads(), encoder=str(tiny_encoder_dir), max_length=32, train={"epochs": 1, "batch_size": 16, "freeze": "encoder"})
    from textheads.encoder import load_encoder

    original, _ = load_encoder(str(tiny_encoder_dir))
    clf.fit(make_rows(32), show_progress=False, echo=lambda _: None)
    for (name, before), after in zip(original.state_dict().items(), clf.model_.encoder.state_dict().values(), strict=True):
        assert torch.equal(before, after), name


def test_head_dropout_is_inverted_dropout() -> None:
    from textheads.heads import Dropout

    torch.manual_seed(0)
    layer = Dropout(0.3)
    x = torch.ones(400, 500)
    out = layer(x)
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.01  # drops a fraction p
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.7))  # scales the rest by 1/(1-p)
    assert abs(float(out.mean()) - 1.0) < 0.01  # expectation kept
    layer.eval()
    assert torch.equal(layer(x), x)
