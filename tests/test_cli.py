"""The `textheads` command end to end: train, evaluate, predict; errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textheads.cli import main


@pytest.fixture()
def trained(config_file: Path, tmp_path: Path) -> Path:
    assert main(["train", str(config_file), "--quiet", "--set", "train.epochs=1"]) == 0
    return tmp_path / "model"


def test_train_prints_where_the_model_is_and_test_metrics(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(config_file), "-q", "--set", "train.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert f"Model saved to {tmp_path / 'model'}" in out
    assert "topics.macro_f1" in out and "score.rmse" in out  # the test split's table


def test_evaluate_writes_metrics_json(trained: Path, data_files: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "metrics.json"
    assert main(["evaluate", str(trained), str(data_files["test"]), "--output", str(output)]) == 0
    metrics = json.loads(output.read_text())
    assert set(metrics) == {"topics", "level", "score"}
    for name in ("micro_f1", "macro_f1", "weighted_f1", "subset_accuracy", "hamming_loss", "roc_auc_macro"):
        assert name in metrics["topics"]
    assert set(metrics["topics"]["per_label"]) == {"code", "cook", "health"}
    assert {"accuracy", "macro_f1", "confusion_matrix"} <= set(metrics["level"])
    assert {"mae", "rmse", "r2"} <= set(metrics["score"])
    out = capsys.readouterr().out
    assert "topics: per label" in out and "confusion matrix" in out


def test_predict_prints_a_table_per_head(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(trained), "python code bug", "pasta oven"]) == 0
    out = capsys.readouterr().out
    assert out.count("topics (multilabel)") == 2
    assert "Label" in out and "Prediction" in out
    assert "level (multiclass)" in out and "score:" in out


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_predict_streams_a_file_to_jsonl(trained: Path, tmp_path: Path, suffix: str) -> None:
    source = tmp_path / f"texts{suffix}"
    texts = ["python code", "oven pasta salt", "doctor sleep " * 30]
    if suffix == ".csv":
        source.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)))
    else:
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    output = tmp_path / "out.jsonl"
    assert main(["predict", str(trained), "--input", str(source), "--output", str(output)]) == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["text"] for r in records] == texts  # input order, though batches are sorted by length
    first = records[0]
    assert set(first["topics"]["probabilities"]) == {"code", "cook", "health"}
    assert isinstance(first["topics"]["labels"], list)
    assert first["level"]["label"] in {"beginner", "mid", "expert"}
    assert abs(sum(first["level"]["probabilities"].values()) - 1) < 1e-4
    assert isinstance(first["score"]["value"], float)
    assert [r["truncated"] for r in records] == [False, False, True]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.yaml"], "cannot read config 'missing.yaml'"),
        (["predict", "no-such-model", "text"], "no-such-model is not a folder here, and as a Hugging Face Hub id"),
        (["predict", "{model}"], "give texts to classify, or --input FILE"),
        (["evaluate", "{model}", "{bad}"], "line 2, column 'text': text is empty"),
    ],
)
def test_errors_are_one_message_without_traceback(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "topics": ["code"], "level": "mid", "score": 1}\n{"text": "", "topics": ["code"]}\n')
    args = [a.format(model=trained, bad=bad) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_config_error_names_the_key(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(config_file), "--set", "train.epoch=1"]) == 2
    assert "train.epoch: unknown key" in " ".join(capsys.readouterr().err.split())


def test_resume_without_checkpoint_says_so(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(config_file), "-q", "--resume", "--set", "train.max_steps=1"]) == 0
    assert "No checkpoint under" in capsys.readouterr().out


def test_file_prediction_in_chunks_keeps_order(trained: Path, tmp_path: Path) -> None:
    from textheads import TextClassifier

    texts = [f"python {'code ' * (i % 7)}bug {i}" for i in range(23)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    clf = TextClassifier.load(trained)
    count, _ = clf.predict_file_to_jsonl(source, tmp_path / "out.jsonl", chunk_size=5, batch_size=4)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert count == 23 and [r["text"] for r in records] == texts
    expected = clf.predict_proba(texts)["topics"]
    np.testing.assert_allclose([list(r["topics"]["probabilities"].values()) for r in records], expected, atol=1e-5)


def test_a_bad_row_at_the_end_writes_nothing(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "".join(f"fine text {i}\n" for i in range(10)) + '""\n')
    output = tmp_path / "out.jsonl"
    assert main(["predict", str(trained), "--input", str(source), "--output", str(output)]) == 2
    assert "line 12, column 'text': text is empty" in " ".join(capsys.readouterr().err.split())
    assert not output.exists()


def _textheads(*args: str) -> subprocess.CompletedProcess:
    """The installed command line, as a user runs it (a separate process)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "textheads", *args], check=False, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "Usage: textheads"),
        (["train"], "Missing argument"),
        (["predict", "--batch-size", "x", "model", "text"], "--batch-size"),
        (["predict", "--batch-size", "0", "model", "text"], "--batch-size"),
        (["evaluate", "model"], "Missing argument"),
        (["train", "config.yaml", "--no-such-option"], "No such option"),
        (["no-such-command"], "No such command"),
    ],
)
def test_usage_errors_print_the_usage_and_exit_2_without_a_traceback(args: list[str], says: str) -> None:
    result = _textheads(*args)
    assert result.returncode == 2, result
    assert "Usage:" in result.stdout + result.stderr
    assert says in " ".join((result.stdout + result.stderr).split())
    assert "Traceback" not in result.stdout + result.stderr


def test_version_and_help_answer_without_importing_the_library() -> None:
    import textheads

    assert _textheads("--version").stdout.strip() == f"textheads {textheads.__version__}"
    # What --help costs: no torch, no transformers (seconds of imports) before parsing.
    probe = (
        "import sys\n"
        "from textheads.cli import main\n"
        "for command in ([], ['train'], ['inspect'], ['evaluate'], ['predict'], ['export'], ['serve'], ['push'], ['demo']):\n"
        "    assert main([*command, '--help']) == 0\n"
        "assert main(['inspect', 'data.jsonl']) == 2\n"  # a usage error (no --heads) answers before the imports too
        "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_progress_bars_go_to_stderr_and_quiet_silences_them(trained: Path, data_files: dict, tmp_path: Path) -> None:
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": f"python code {i}"}) + "\n" for i in range(5)))
    shown = _textheads("predict", str(trained), "--input", str(source), "--output", str(tmp_path / "a.jsonl"))
    assert shown.returncode == 0, shown.stderr
    assert "Predicting" in shown.stderr and "Predicting" not in shown.stdout
    assert "rows/s" in shown.stderr  # the file's bar shows its rate
    evaluated = _textheads("evaluate", str(trained), str(data_files["test"]))
    assert "Predicting" in evaluated.stderr and "topics.macro_f1" in evaluated.stdout
    quiet = _textheads("predict", str(trained), "--input", str(source), "--output", str(tmp_path / "b.jsonl"), "-q")
    assert quiet.returncode == 0 and "Predicting" not in quiet.stderr and "rows/s" not in quiet.stderr


def test_evaluate_json_goes_to_stdout(trained: Path, data_files: dict, capsys: pytest.CaptureFixture[str]) -> None:
    for flag in (["--output", "-"], ["--json"]):
        assert main(["evaluate", str(trained), str(data_files["test"]), "-q", *flag]) == 0
        metrics = json.loads(capsys.readouterr().out)  # nothing else on stdout
        assert set(metrics) == {"topics", "level", "score"} and "macro_f1" in metrics["topics"]


def test_train_writes_test_metrics_beside_the_model(trained: Path) -> None:
    metrics = json.loads((trained / "test_metrics.json").read_text())
    assert set(metrics) == {"topics", "level", "score"} and "rmse" in metrics["score"]


def test_predict_input_without_output_streams_records_to_stdout(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "texts.csv"
    texts = [f"python code {i}" if i % 2 else f"oven pasta {i}" for i in range(9)]
    source.write_text("text\n" + "".join(f"{t}\n" for t in texts))
    assert main(["predict", str(trained), "--input", str(source), "-q"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == texts and all("topics" in r for r in records)


def test_a_system_error_is_one_line_not_a_traceback(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    assert main(["predict", str(trained), "python code", "--output", str(blocker / "out.jsonl")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("Error:") and "a-file" in err and "Traceback" not in err


def test_every_public_name_is_listed_once_and_imports() -> None:
    import textheads

    # The names are imported lazily (see test_version_and_help_answer_without_importing_the_library).
    lazy = set(textheads._EXPORTS)
    assert set(textheads.__all__) == lazy | {"__version__"}
    for name in lazy:
        assert getattr(textheads, name).__name__ == name
