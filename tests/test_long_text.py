"""`model.long_text`: texts longer than `max_length` read truncated, as head and tail, or in
windows combined into one answer per document, the same in every path."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from conftest import write_jsonl
from service import serving
from textheads import TextClassifier
from textheads.cli import main
from textheads.config import build_config
from textheads.errors import ConfigError
from textheads.inference.batching import collate, grouped_batches, sorted_batches, tokenize
from textheads.inference.windows import LongText, Truncation, window_rows
from textheads.model_config import long_text_of, read_model_config

FILLER = ["the", "a", "is", "very", "really", "my", "your", "today", "weather", "good"]
SIGNAL = {"code": "python", "cook": "pasta"}
SHORT = ["python code", "pasta", "the weather is good today"]


def end_decided_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Texts of 58 words (60 tokens with [CLS]/[SEP]) whose label is decided by one word near the end."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = sorted(SIGNAL)[i % 2]
        words = [rng.choice(FILLER) for _ in range(55)] + [SIGNAL[label]] + [rng.choice(FILLER) for _ in range(2)]
        rows.append({"text": " ".join(words), "topic": label})
    return rows


def long_config(encoder: Path, root: Path, mode: str, **model: Any) -> dict[str, Any]:
    files = {"train": write_jsonl(root / "train.jsonl", end_decided_rows(80, 1)), "validation": write_jsonl(root / "dev.jsonl", end_decided_rows(40, 2))}
    return {
        "model": {"encoder": str(encoder), "max_length": 16, "long_text": mode, **model},
        "data": {"train": str(files["train"]), "validation": str(files["validation"])},
        "heads": {"topic": {"kind": "multiclass"}},
        "train": {"epochs": 8, "batch_size": 8, "learning_rate": 1e-3, "head_learning_rate": 5e-3, "seed": 3},
        "output_dir": str(root / "model"),
    }


def fit(encoder: Path, root: Path, mode: str, **model: Any) -> TextClassifier:
    root.mkdir(parents=True, exist_ok=True)
    return TextClassifier.from_config(build_config(long_config(encoder, root, mode, **model))).fit(show_progress=False, echo=lambda _: None)


@pytest.fixture(scope="module")
def trained(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per mode, the folder of a model (conv head, the fine-tuning default) trained on end-decided texts, and its data."""
    folders = {}
    for mode in ("windows", "head_tail", "truncate"):
        folders[mode] = tmp_path_factory.mktemp(mode)
        fit(tiny_encoder_dir, folders[mode], mode)
    return folders


@pytest.fixture(scope="module")
def windows_model(trained: dict[str, Path]) -> Path:
    return trained["windows"] / "model"


# -- config ----------------------------------------------------------------------


def test_a_long_text_mode_that_does_not_exist_is_a_config_error_naming_the_key(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.long_text: Input should be 'truncate', 'head_tail' or 'windows'"):
        build_config(long_config(tiny_encoder_dir, tmp_path, "chunks"))


@pytest.mark.parametrize(("stride", "message"), [(9, "window_stride: 9 tokens of overlap is more than half of max_length \\(16\\); give at most 8"), (-1, r"model\.window_stride: Input should be greater than or equal to 0")])
def test_a_window_stride_that_does_not_fit_the_window_is_a_config_error(tiny_encoder_dir: Path, tmp_path: Path, stride: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(long_config(tiny_encoder_dir, tmp_path, "windows", window_stride=stride))


def test_max_windows_must_be_positive(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.max_windows: Input should be greater than or equal to 1"):
        build_config(long_config(tiny_encoder_dir, tmp_path, "windows", max_windows=0))


# -- reading one text ------------------------------------------------------------------


def test_windows_cover_the_text_overlapping_by_the_stride_and_end_at_its_end() -> None:
    content = list(range(40))
    windows, dropped = window_rows(content, 10, LongText("windows", window_stride=3, max_windows=8))
    assert dropped == 0
    assert all(len(w) == 10 for w in windows)
    assert windows[0] == content[:10] and windows[-1] == content[-10:]
    assert sorted(set().union(*windows)) == content
    starts = [w[0] for w in windows]
    assert all(b - a <= 7 for a, b in itertools.pairwise(starts))  # overlap at least the stride


def test_past_max_windows_the_first_windows_are_kept_and_the_rest_counts_as_dropped() -> None:
    windows, dropped = window_rows(list(range(100)), 10, LongText("windows", window_stride=2, max_windows=3))
    assert [w[0] for w in windows] == [0, 8, 16]
    assert dropped == 100 - 26


def test_head_tail_keeps_a_quarter_from_the_start_and_the_rest_from_the_end() -> None:
    (row,), dropped = window_rows(list(range(100)), 20, LongText("head_tail"))
    assert row == [*range(5), *range(85, 100)]
    assert dropped == 80
    assert window_rows(list(range(20)), 20, LongText("head_tail")) == ([list(range(20))], 0)


def test_windows_read_a_short_text_exactly_as_truncation_does(tiny_encoder_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    for mode in ("windows", "head_tail"):
        tokens = tokenize(tokenizer, SHORT, 16, LongText(mode))
        assert tokens.input_ids == tokenize(tokenizer, SHORT, 16).input_ids
        assert not tokens.truncated.any()


def test_batches_of_windows_keep_each_text_whole_and_stay_length_sorted(tiny_encoder_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    texts = [row["text"] for row in end_decided_rows(6, 0)] + SHORT
    tokens = tokenize(tokenizer, texts, 16, LongText("windows", window_stride=4, max_windows=8))
    assert list(tokens.windows) == [6] * 6 + [1, 1, 1]
    batch = collate(tokens, np.array([6, 0, 7]), 0)
    assert batch["window_document"].tolist() == [0, 1, 1, 1, 1, 1, 1, 2]
    assert batch["input_ids"].shape == (8, 16)
    # inference: at most batch_size windows a batch (at least one text), longest texts first
    batches = sorted_batches(tokens.lengths, 8, tokens.windows)
    assert [tokens.windows[b].sum() for b in batches] == [6, 6, 6, 6, 6, 8, 1]
    assert np.concatenate(batches).tolist() == [0, 1, 2, 3, 4, 5, 8, 6, 7]
    # training: batch_size texts a batch (all their windows), texts of one batch of similar length
    for batch_rows in grouped_batches(tokens.lengths, 3, np.random.default_rng(0)):
        assert len(set(tokens.windows[batch_rows])) == 1


# -- training ------------------------------------------------------------------


def test_a_label_decided_at_the_end_is_learnt_with_windows_and_head_tail_and_not_with_truncation(trained: dict[str, Path]) -> None:
    accuracy = {mode: TextClassifier.load(folder / "model").evaluate(folder / "dev.jsonl")["topic"]["accuracy"] for mode, folder in trained.items()}
    assert accuracy["windows"] == 1.0 and accuracy["head_tail"] == 1.0
    assert accuracy["truncate"] <= 0.75  # it never sees the word: chance, give or take noise


def test_one_loss_per_document_the_model_answers_once_per_text(windows_model: Path) -> None:
    clf = TextClassifier.load(windows_model)
    tokens = tokenize(clf.tokenizer_, [r["text"] for r in end_decided_rows(3, 5)], 16, long_text_of(clf.model_.config))
    batch = collate(tokens, np.arange(3), 0)
    assert batch["input_ids"].shape[0] == 18
    with torch.inference_mode():
        assert clf.model_(**batch)["topic"].shape == (3, 2)


# -- a saved model ---------------------------------------------------------------


def test_a_saved_model_reads_long_texts_as_it_was_trained_to(windows_model: Path) -> None:
    config = read_model_config(windows_model)
    assert (config.long_text, config.window_stride, config.max_windows, config.window_pooling) == ("windows", 4, 8, "mean")
    clf = TextClassifier.load(windows_model)
    assert clf.config.model.long_text == "windows"
    records = clf.predict_records([r["text"] for r in end_decided_rows(20, 9)])
    assert [r["topic"]["label"] for r in records] == [r["topic"] for r in end_decided_rows(20, 9)]
    assert not any(r["truncated"] for r in records)


def test_a_model_saved_before_long_text_existed_loads_as_truncating(windows_model: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(windows_model, old)
    raw = json.loads((old / "config.json").read_text())
    for key in ("long_text", "window_stride", "max_windows", "window_pooling"):
        del raw[key]
    (old / "config.json").write_text(json.dumps(raw))
    clf = TextClassifier.load(old)
    assert clf.config.model.long_text == "truncate"
    assert clf.predict_records([end_decided_rows(1, 0)[0]["text"]])[0]["truncated"]


def test_windows_give_the_same_answer_as_truncation_for_short_texts(windows_model: Path) -> None:
    clf = TextClassifier.load(windows_model)
    windowed = clf.predict_proba(SHORT)
    clf.model_.config.long_text = "truncate"
    np.testing.assert_allclose(clf.predict_proba(SHORT)["topic"], windowed["topic"], rtol=1e-5, atol=1e-6)


# -- what was not read ----------------------------------------------------------


def test_truncated_is_true_only_where_text_was_dropped(windows_model: Path, tiny_encoder_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    texts = [end_decided_rows(1, 0)[0]["text"], "python code"]
    covered = tokenize(tokenizer, texts, 16, LongText("windows", window_stride=4, max_windows=8))
    assert covered.truncated.tolist() == [False, False]
    capped = tokenize(tokenizer, texts, 16, LongText("windows", window_stride=4, max_windows=2))
    assert capped.truncated.tolist() == [True, False]
    assert capped.unread[0] == pytest.approx((58 - 24) / 58)  # 2 windows of 14 overlapping by 4 read 24 of 58
    head_tail = tokenize(tokenizer, texts, 16, LongText("head_tail"))
    assert head_tail.truncated.tolist() == [True, False]
    assert head_tail.unread[0] == pytest.approx((58 - 14) / 58)
    cut = tokenize(tokenizer, texts, 16)
    assert cut.truncated.tolist() == [True, False]
    assert cut.unread[0] == pytest.approx((58 - 14) / 58)


def test_the_truncation_line_says_how_many_texts_were_cut_and_how_much() -> None:
    report = Truncation()
    report.add(np.array([True, False, True, False]), np.array([0.5, 0.0, 0.3, 0.0]))
    assert report.line(128) == "2 of 4 texts were longer than 128 tokens (their end was cut); on average 40% of their tokens were not read"
    windows = LongText("windows", max_windows=8)
    assert report.line(128, windows).startswith("2 of 4 texts were longer than the 8 windows of 128 tokens the model reads")
    assert Truncation(texts=3).line(128, windows) == "0 of 3 texts were longer than the 8 windows of 128 tokens the model reads: every text was read whole"


def test_predict_and_evaluate_say_how_many_texts_were_cut(windows_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = write_jsonl(tmp_path / "long.jsonl", end_decided_rows(4, 3) + [{"text": "python code", "topic": "code"}])
    assert main(["predict", str(windows_model), "--input", str(long), "--output", str(tmp_path / "out.jsonl"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0 of 5 texts were longer than the 8 windows of 16 tokens the model reads: every text was read whole" in out
    assert main(["evaluate", str(windows_model), str(long), "--quiet", "--no-per-label"]) == 0
    assert "0 of 5 texts were longer than the 8 windows" in capsys.readouterr().out


def test_texts_past_max_windows_are_counted_and_flagged(windows_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    capped = tmp_path / "capped"
    shutil.copytree(windows_model, capped)
    raw = json.loads((capped / "config.json").read_text())
    (capped / "config.json").write_text(json.dumps({**raw, "max_windows": 2}))
    texts = tmp_path / "texts.jsonl"
    write_jsonl(texts, end_decided_rows(3, 3) + [{"text": "python code"}])
    assert main(["predict", str(capped), "--input", str(texts), "--output", str(tmp_path / "out.jsonl"), "--quiet"]) == 0
    assert "3 of 4 texts were longer than the 2 windows of 16 tokens the model reads (their end was cut); on average 59% of their tokens were not read" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["truncated"] for r in records] == [True, True, True, False]


# -- the frozen fast path -----------------------------------------------------------


def test_the_frozen_path_caches_window_vectors_and_never_reads_a_truncation_cache(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    def run(mode: str, name: str) -> tuple[str, TextClassifier]:
        (tmp_path / name).mkdir()
        raw = long_config(tiny_encoder_dir, tmp_path / name, mode)
        raw["train"].update(freeze="encoder", epochs=2, cache_dir=str(tmp_path / "cache"))
        lines: list[str] = []
        clf = TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lines.append)
        return next(line for line in lines if line.startswith("Frozen encoder:")), clf

    assert run("truncate", "a")[0].startswith("Frozen encoder: 0 of 120 texts from the embedding cache")
    first, clf = run("windows", "b")
    assert first.startswith("Frozen encoder: 0 of 120 texts from the embedding cache, 120 encoded")
    assert run("windows", "c")[0].startswith("Frozen encoder: 120 of 120 texts from the embedding cache")
    # the cached vectors are the windows' combined, as the model computes them
    from textheads.training.frozen import encode_with_cache

    texts = [r["text"] for r in end_decided_rows(3, 4)]
    cached, _ = encode_with_cache(clf.model_, clf.tokenizer_, texts, cache_dir=tmp_path / "cache")
    tokens = tokenize(clf.tokenizer_, texts, 16, long_text_of(clf.model_.config))
    with torch.inference_mode():
        direct = clf.model_.encode(**collate(tokens, np.arange(3), 0))
    np.testing.assert_allclose(cached, direct.numpy(), rtol=1e-4, atol=1e-5)


# -- every path answers the same on long texts ---------------------------------------------


@contextmanager
def serving_client(model: Path, *options: str) -> Iterator[httpx.Client]:
    """`textheads serve` on a loopback port, and a client for it."""
    with serving(model, *options) as (_, base), httpx.Client(base_url=base, timeout=60) as client:
        yield client


def _probabilities(records: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[record["topic"]["probabilities"][label] for label in sorted(SIGNAL)] for record in records])


def test_api_cli_evaluate_onnx_and_service_give_the_same_answers_on_long_texts(windows_model: Path, tmp_path: Path) -> None:
    rows = end_decided_rows(12, 11)
    rng = random.Random(0)
    for row in rows[::3]:  # lengths from one window to many
        row["text"] = " ".join(row["text"].split()[-rng.randint(1, 20) :])
    data = write_jsonl(tmp_path / "long.jsonl", rows)
    texts = [row["text"] for row in rows]
    api = TextClassifier.load(windows_model)
    expected = api.predict_records(texts)
    assert {len(tokens) for tokens in [tokenize(api.tokenizer_, [t], 16, long_text_of(api.model_.config)).input_ids for t in texts]} >= {1, 6}
    # CLI predict: a file to a file (the resumable path) and streamed
    assert main(["predict", str(windows_model), "--input", str(data), "--output", str(tmp_path / "out.jsonl"), "--quiet"]) == 0
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(_probabilities(written), _probabilities(expected), atol=1e-5)
    # evaluate: the same decisions
    accuracy = np.mean([record["topic"]["label"] == row["topic"] for record, row in zip(expected, rows, strict=True)])
    assert api.evaluate(data)["topic"]["accuracy"] == pytest.approx(accuracy)
    # ONNX: windows in, one answer per document out
    assert main(["export", str(windows_model), "--output", str(tmp_path / "onnx")]) == 0
    assert json.loads((tmp_path / "onnx" / "textheads_onnx.json").read_text())["inputs"][-1] == "window_document"
    exported = TextClassifier.load(tmp_path / "onnx")
    np.testing.assert_allclose(_probabilities(exported.predict_records(texts)), _probabilities(expected), atol=1e-5)
    assert exported.evaluate(data)["topic"]["accuracy"] == pytest.approx(accuracy)
    # the service, on the PyTorch model (model processes) and on the export (in process)
    for model, extra in ((windows_model, ()), (tmp_path / "onnx", ("--in-process",))):
        with serving_client(model, *extra) as client:
            assert client.get("/model").json()["long_text"] == "windows"
            answer = client.post("/predict", json={"texts": texts})
            assert answer.status_code == 200, answer.text
            served = answer.json()["predictions"]
        np.testing.assert_allclose(_probabilities(served), _probabilities(expected), atol=1e-5)
        assert [record["truncated"] for record in served] == [False] * len(texts)
