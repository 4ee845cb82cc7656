"""The model: output kinds, save/load identity, freezing, and the classifier API."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import LEVELS, make_rows
from textheads import NotFittedError, TextClassifier
from textheads.errors import ConfigError, DataError, ModelLoadError, ModelOutputError
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


# ----------------------------------------------------------------------------- a model trained on texts as long as the encoder reads


def _long_text(words: int) -> str:
    return " ".join(["python"] * words)


@pytest.fixture(scope="module")
def long_model(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory trained at max_length 128 (all the tiny BERT's positions) with a
    text longer than that; tests load their own copy."""
    rows = [*make_rows(15), {"text": _long_text(150), "topics": ["code"], "level": "mid", "score": 1.0}]
    clf = TextClassifier(_heads(), encoder=str(tiny_encoder_dir), max_length=128, validation_split=0, train={"epochs": 1, "batch_size": 16})
    clf.fit(rows, show_progress=False, echo=lambda _: None)
    path = tmp_path_factory.mktemp("long") / "model"
    clf.save(path)
    return path


def test_max_length_at_the_encoders_limit_trains_on_long_texts(long_model: Path) -> None:
    assert TextClassifier.load(long_model).predict_records([_long_text(300)])[0]["truncated"]


def test_max_length_beyond_the_encoders_positions_fails_before_training(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    # The tiny BERT has 128 positions; a text of 150 words would crash training mid-way.
    rows = [*make_rows(24), {"text": _long_text(150), "topics": ["code"], "level": "mid", "score": 1.0}]
    clf = TextClassifier(_heads(), encoder=str(tiny_encoder_dir), max_length=200, validation_split=0, train={"epochs": 1}, output_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match=re.escape(f"model.max_length: 200 is more than encoder {str(tiny_encoder_dir)!r} reads: at most 128 tokens")):
        clf.fit(rows, show_progress=False, echo=lambda _: None)
    assert not (tmp_path / "run" / "training_config.yaml").exists()


def test_saved_model_asking_for_more_tokens_than_its_encoder_has_cuts_texts(long_model: Path, tmp_path: Path) -> None:
    # As written by a textheads that did not check model.max_length against the encoder.
    old = tmp_path / "old"
    shutil.copytree(long_model, old)
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    (old / "config.json").write_text(json.dumps({**config, "max_text_length": 300}), encoding="utf-8")
    with pytest.warns(UserWarning, match=re.escape(f"the model in {old}: max_length 300 is more than its encoder reads; texts are cut at 128 tokens")):
        loaded = TextClassifier.load(old)
    short, long = loaded.predict_records(["python code", _long_text(400)])
    assert long["truncated"] and not short["truncated"]
    expected = TextClassifier.load(long_model).predict_proba(["python code", _long_text(400)])
    for head, values in loaded.predict_proba(["python code", _long_text(400)]).items():
        np.testing.assert_array_equal(values, expected[head])


# ----------------------------------------------------------------------------- thresholds


def test_set_thresholds_for_some_labels_keeps_the_others(long_model: Path, tmp_path: Path) -> None:
    clf = TextClassifier.load(long_model)
    clf.set_thresholds("topics", {"code": 0.2, "cook": 0.3, "health": 0.4})
    clf.set_thresholds("topics", {"cook": 0.9})
    assert clf.heads_["topics"].thresholds() == [0.2, 0.9, 0.4]
    clf.save(tmp_path / "m")
    assert TextClassifier.load(tmp_path / "m").heads_["topics"].thresholds() == [0.2, 0.9, 0.4]
    clf.set_thresholds("topics", 0.6)
    assert clf.heads_["topics"].thresholds() == [0.6, 0.6, 0.6]


def test_set_thresholds_names_what_is_wrong(long_model: Path) -> None:
    clf = TextClassifier.load(long_model)
    before = clf.heads_
    for head, value, message in [
        ("topics", {"cok": 0.3}, "head 'topics' has no label(s) ['cok']; its labels are ['code', 'cook', 'health']"),
        ("topics", {"cook": 1.5}, "head 'topics': threshold of label 'cook' must be between 0 and 1; got 1.5"),
        ("topics", -0.2, "head 'topics': threshold must be between 0 and 1; got -0.2"),
        ("level", 0.3, "head 'level': threshold applies to multilabel heads only"),
        ("topix", 0.3, "no head named 'topix'; heads are ['level', 'score', 'topics']"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            clf.set_thresholds(head, value)  # type: ignore[arg-type]
        assert clf.heads_ == before


# ----------------------------------------------------------------------------- no NaN answers


def test_regression_head_without_labels_fails_before_training(tiny_encoder_dir: Path) -> None:
    rows = [{**row, "score": None} for row in make_rows(30)]
    clf = TextClassifier(_heads(), encoder=str(tiny_encoder_dir), max_length=32, train={"epochs": 1})
    with pytest.raises(DataError, match=re.escape("<records>, column 'score': head 'score' has no labelled row to train on")):
        clf.fit(rows, show_progress=False, echo=lambda _: None)


def test_no_prediction_record_carries_nan(long_model: Path) -> None:
    # A model whose regression statistics are broken (as a head without targets once made them).
    clf = TextClassifier.load(long_model)
    clf.model_.config.target_stats["score"] = [float("nan"), 1.0]
    with pytest.raises(ModelOutputError, match=re.escape("head 'score' gave a non-finite output for text 0 (of 2): nan")):
        clf.predict_records(["python code", "pasta"])
    with pytest.raises(ModelOutputError, match="head 'score'"):
        clf.predict(["python code"])


def test_a_feature_that_does_not_vary_is_ignored_not_magnified() -> None:
    import torch

    from textheads.heads import Head
    from textheads.specs import HeadSpec

    torch.manual_seed(0)
    head = Head(HeadSpec(name="t", kind="multilabel", labels=["a", "b"]), input_size=4).eval()
    vectors = torch.randn(64, 4)
    vectors[:, 2] = 0.25  # a pooled feature the encoder never varies
    head.standardise(vectors)
    assert head.input_scale[2] == 0 and torch.all(head.input_scale[[0, 1, 3]] > 0)
    noisy = vectors.clone()
    noisy[:, 2] += 1e-3  # rounding noise on it, as int8 brings
    torch.testing.assert_close(head(noisy), head(vectors))
