"""Training options: the frozen fast path and its cache, conv heads, pooling, LLRD, max_time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import three_head_config
from textheads import TextClassifier
from textheads.config import build_config
from textheads.training.loop import training_precision
from textheads.training.optim import LinearSchedule, build_optimizer

QUIET = {"show_progress": False}


def _fit(raw: dict, messages: list[str] | None = None) -> TextClassifier:
    echo = messages.append if messages is not None else (lambda _: None)
    return TextClassifier.from_config(build_config(raw)).fit(echo=echo, **QUIET)


def test_frozen_fast_path_caches_embeddings(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first: list[str] = []
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "a", freeze="encoder", epochs=5, cache_dir=str(cache))
    clf = _fit(raw, first)
    assert "Frozen encoder: 0 of 126 texts from the embedding cache, 126 encoded" in first[0]
    assert list((cache / "embeddings").glob("*/*.safetensors"))
    second: list[str] = []
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "b", freeze="encoder", epochs=5, cache_dir=str(cache))
    again = _fit(raw, second)
    assert "Frozen encoder: 126 of 126 texts from the embedding cache, 0 encoded" in second[0]
    texts = ["python bug", "oven pasta"]
    for head, values in clf.predict_proba(texts).items():
        np.testing.assert_allclose(values, again.predict_proba(texts)[head], atol=1e-6)
    # The saved model predicts from text (no cache needed) exactly as trained.
    loaded = TextClassifier.load(tmp_path / "a").predict_proba(texts)
    for head, values in clf.predict_proba(texts).items():
        np.testing.assert_allclose(values, loaded[head], atol=1e-6)


def test_cached_vectors_equal_the_models_own_encoding(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    from textheads.training.frozen import encode_with_cache

    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", freeze="encoder", epochs=1, cache_dir=str(tmp_path / "c"))
    raw["model"].update(pooling="mean_max", pool_layers=2)
    clf = _fit(raw)
    texts = ["python bug and more words", "oven"]
    cached, new = encode_with_cache(clf.model_, clf.tokenizer_, texts, cache_dir=tmp_path / "c")
    assert new == 2 and cached.shape == (2, 32 * 2 * 2)
    batch = clf.tokenizer_(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        direct = clf.model_.encode(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).numpy()
    np.testing.assert_allclose(cached, direct, atol=1e-5)


def test_embedding_cache_gathers_across_shards_and_duplicates(tmp_path: Path) -> None:
    from textheads.training.embedding_cache import EmbeddingCache

    calls: list[list[str]] = []

    def compute(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)

    cache = EmbeddingCache(tmp_path, "k", width=2)
    first, new = cache.get_or_compute(["ab", "c", "ab"], compute)
    assert new == 3 and calls == [["ab", "c"]]  # each distinct text encoded once
    second, new = cache.get_or_compute(["dddd", "c", "ab"], compute)  # one new shard, two old rows
    assert new == 1 and calls[-1] == ["dddd"]
    np.testing.assert_array_equal(second, [[4, 100], [1, 99], [2, 97]])
    fresh = EmbeddingCache(tmp_path, "k", width=2)  # a new process reads both shards from disk
    again, new = fresh.get_or_compute(["ab", "dddd", "c"], compute)
    assert new == 0 and len(calls) == 2
    np.testing.assert_array_equal(again, [[2, 97], [4, 100], [1, 99]])
    np.testing.assert_array_equal(first, [[2, 97], [1, 99], [2, 97]])


def test_frozen_thresholds_are_tuned_on_the_cached_validation_vectors(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    from textheads.data.dataset import load_labelled
    from textheads.thresholds import tuned_spec

    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", freeze="encoder", epochs=1, cache_dir=str(tmp_path / "c"))
    raw["heads"]["topics"]["hidden_sizes"] = []  # a linear head: its tuned thresholds move off 0.5 here, the default MLP's do not
    clf = _fit(raw)
    spec = clf.heads_["topics"]
    # The same tuning on predictions made from the text by the saved model.
    validation, _ = load_labelled(data_files["validation"], list(clf.heads_.values()), ["text"], split="validation")
    target = validation.targets["topics"]
    proba = TextClassifier.load(tmp_path / "m").predict_proba(validation.texts)["topics"]
    expected, _ = tuned_spec(spec.model_copy(update={"threshold": 0.5}), target.values[target.mask].astype(np.int64), proba[target.mask])
    assert spec.threshold == pytest.approx(expected.threshold, abs=1e-6)
    assert set(spec.threshold.values()) != {0.5}  # tuning moved something: the check means something


def test_conv_head_trains_and_reloads(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", epochs=2)
    raw["heads"]["topics"].update(conv_kernel_sizes=[2, 3], conv_channels=8)
    clf = _fit(raw)
    assert clf.model_.reads_tokens
    texts = ["python bug", "oven pasta salt garlic soup"]
    np.testing.assert_allclose(clf.predict_proba(texts)["topics"], TextClassifier.load(tmp_path / "m").predict_proba(texts)["topics"], atol=1e-6)


def test_conv_head_ignores_padding(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", max_steps=2)
    raw["heads"]["topics"].update(conv_kernel_sizes=[3], conv_channels=8)
    clf = _fit(raw)
    alone = clf.predict_proba(["python"], batch_size=1)["topics"]
    padded = clf.predict_proba(["python", "oven pasta salt garlic soup sleep doctor run walk"], batch_size=2)["topics"][:1]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_layer_wise_learning_rate_decay(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", max_steps=1, layer_lr_decay=0.5, learning_rate=1e-3, head_learning_rate=1e-2)
    clf = _fit(raw)
    optimizer = build_optimizer(clf.model_, build_config(raw).train)
    rates = {group["name"].removesuffix(".no_decay"): group["lr"] for group in optimizer.param_groups}
    # 2 layers: top (depth 0) 1e-3, next 5e-4, embeddings (depth 2) 2.5e-4; heads 1e-2
    assert rates == pytest.approx({"encoder.depth0": 1e-3, "encoder.depth1": 5e-4, "encoder.depth2": 2.5e-4, "heads.depth0": 1e-2})
    assert optimizer.defaults["fused"]  # CPU has the fused AdamW kernel


def test_schedule_warms_up_decays_and_replans() -> None:
    schedule = LinearSchedule(100, 0.1)
    assert schedule(0) < schedule(5) < schedule(9) <= 1.0
    assert schedule(10) == pytest.approx(1.0) and schedule(100) == 0.0
    schedule.replan(50)
    assert schedule.warmup_steps == 5 and schedule(50) == 0.0 and schedule(30) > 0
    schedule.replan(200)  # planned longer part-way: the warm-up stays as it was
    assert schedule.warmup_steps == 5 and schedule(5) == pytest.approx(1.0) and schedule(200) == 0.0


class StepClock:
    """A clock that moves only when a training step runs, by `seconds(step)`: the `max_time`
    tests then plan on a known pace, however busy the machine is."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, seconds: Callable[[int], float]) -> None:
        from textheads.training import loop
        from textheads.training.step import StepRunner

        self.now, self.steps = 1000.0, 0
        run = StepRunner.run

        def timed_run(runner: StepRunner, indices: np.ndarray) -> dict[str, float]:
            self.steps += 1
            self.now += seconds(self.steps)
            return run(runner, indices)

        monkeypatch.setattr(StepRunner, "run", timed_run)
        monkeypatch.setattr(loop, "monotonic", lambda: self.now)


def test_max_time_replans_the_schedule_to_fit(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    StepClock(monkeypatch, lambda step: 0.1)
    messages: list[str] = []
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", epochs=1000, max_time="3s")
    clf = _fit(raw, messages)
    assert any("train.max_time=3s: planning" in m for m in messages)
    assert clf.train_result_.global_step <= 30  # 3 s at 0.1 s a step, not the 1000 epochs asked
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    trained = [r for r in log if r.get("event") != "thresholds"]  # the chosen thresholds come last
    assert trained[-1]["event"] == "evaluation"  # ended with an evaluation and a saved model
    assert (tmp_path / "m" / "model.safetensors").exists()


def _planned_steps(messages: list[str]) -> list[int]:
    return [int(m.split("planning ", 1)[1].split()[0]) for m in messages if "planning " in m]


def test_max_time_plans_back_up_when_the_first_steps_were_slow(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first steps of a run are slow (here 1 s each, then 0.1 s); once later steps show
    the real pace, the plan grows back to the configured epochs instead of staying cut."""
    StepClock(monkeypatch, lambda step: 1.0 if step <= 5 else 0.1)
    messages: list[str] = []
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", epochs=5, max_time="20s")
    clf = _fit(raw, messages)
    planned = _planned_steps(messages)
    assert planned[0] < 30  # after 5 slow steps the budget looked short
    assert planned[-1] == 30  # then the pace was measured again: all 5 epochs (6 steps each) fit
    assert clf.train_result_.global_step == 30


def test_max_time_replans_between_evaluations_when_the_budget_is_shorter_than_an_epoch(
    tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No evaluation before the end (as in a budget shorter than an epoch): the plan made on slow
    first steps is still corrected once the steps run faster, instead of ending the run early."""
    StepClock(monkeypatch, lambda step: 1.0 if step <= 5 else 0.1)
    messages: list[str] = []
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", epochs=5, max_time="20s", eval_every_steps=1000)
    clf = _fit(raw, messages)
    planned = _planned_steps(messages)
    assert planned[0] < 30 and planned[-1] == 30
    assert clf.train_result_.global_step == 30


def test_max_time_without_epochs_plans_to_fill_the_budget(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    StepClock(monkeypatch, lambda step: 0.1)
    messages: list[str] = []
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", epochs=None, max_time="6s")
    clf = _fit(raw, messages)
    assert max(_planned_steps(messages)) > 3 * 6  # more than the 3 epochs of a run without max_time
    assert clf.train_result_.global_step > 3 * 6
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [r for r in log if r.get("event") != "thresholds"][-1]["event"] == "evaluation"


def test_bf16_autocast_trains(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", epochs=1, precision="bf16", device="cpu")
    clf = _fit(raw)
    proba = clf.predict_proba(["python bug"])
    assert proba["topics"].dtype == np.float32 and np.isfinite(proba["score"]).all()


def test_device_must_be_known() -> None:
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'"):
        build_config({"heads": {"t": {"kind": "multilabel"}}, "train": {"device": "tpu"}})


def test_precision_auto_means_native_bf16_only() -> None:
    cpu = torch.device("cpu")
    assert training_precision("fp32", cpu) == "fp32" and training_precision("bf16", cpu) == "bf16"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags = set(cpuinfo.read_text().split())
        native = "avx512_bf16" in flags or "amx_bf16" in flags
        assert training_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert training_precision("auto", torch.device("meta")) == "fp32"


def test_train_log_says_which_precision_ran(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", max_steps=2, precision="fp32")
    _fit(raw)
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert log[0] == {"event": "start", "step": 0, "total_steps": 2, "device": "cpu", "precision": "fp32"}
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "f", max_steps=2, precision="bf16", freeze="encoder", cache_dir=str(tmp_path / "c"))
    _fit(raw)
    log = [json.loads(line) for line in (tmp_path / "f" / "train_log.jsonl").read_text().splitlines()]
    assert log[0] == {"event": "start", "step": 0, "total_steps": 2, "device": "cpu", "precision": "bf16"}


def test_a_frozen_run_trains_and_records_the_frozen_defaults(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    import yaml

    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", freeze="encoder", cache_dir=str(tmp_path / "c"))
    for key in ("epochs", "batch_size", "head_learning_rate"):
        del raw["train"][key]
    clf = _fit(raw)
    saved = yaml.safe_load((tmp_path / "m" / "training_config.yaml").read_text())
    assert saved["model"]["pool_layers"] == 3  # all of the tiny BERT's hidden states: embeddings and 2 layers
    assert [(h["hidden_sizes"], h["dropout"]) for h in saved["heads"].values()] == [([512], 0.3)] * 3
    assert (saved["train"]["epochs"], saved["train"]["batch_size"], saved["train"]["head_learning_rate"]) == (8, 512, 1e-3)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["pool_layers"] == 3
    start = json.loads((tmp_path / "m" / "train_log.jsonl").read_text().splitlines()[0])
    assert start["total_steps"] == 8  # 96 rows at 512 a batch: one step an epoch
    assert clf.model_ is not None and clf.model_.heads["topics"].layers[1].weight.shape == (512, 32 * 3)


def test_pool_layers_beyond_the_encoders_hidden_states_fails_before_training(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    from textheads.errors import ConfigError

    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", freeze="encoder")
    raw["model"]["pool_layers"] = 4
    with pytest.raises(ConfigError, match=r"model.pool_layers: 4 is more hidden states than encoder .* has \(3: its embeddings and 2 layers\); set model.pool_layers to 3 or less, or to all"):
        _fit(raw)
    assert not (tmp_path / "m").exists()


def test_evaluating_a_frozen_fit_reads_the_texts_from_the_embedding_cache(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    clf = _fit(three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", freeze="encoder", epochs=2, cache_dir=str(cache)))
    shards = set(cache.glob("embeddings/*/*.safetensors"))
    metrics = clf.evaluate(data_files["test"])
    after = set(cache.glob("embeddings/*/*.safetensors"))
    assert len(after - shards) == 1  # the test texts, encoded once and cached
    assert clf.evaluate(data_files["test"]) == metrics
    assert set(cache.glob("embeddings/*/*.safetensors")) == after  # read back, not encoded again
    # The same metrics as the saved model gives, encoding the texts itself.
    from_text = TextClassifier.load(tmp_path / "m").evaluate(data_files["test"])
    assert from_text["topics"]["macro_f1"] == pytest.approx(metrics["topics"]["macro_f1"])
    assert from_text["score"]["mae"] == pytest.approx(metrics["score"]["mae"], abs=1e-5)
