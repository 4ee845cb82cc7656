"""`predict --input F --output O` on files of any size: constant memory, a partial that
survives a kill, and `--resume` (its rows/s progress bar: test_cli)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from conftest import LEVELS, make_rows
from textheads.cli import main
from textheads.data.dataset import check_text_file, iter_text_chunks
from textheads.inference.resumable import partial_paths


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from textheads import TextClassifier

    clf = TextClassifier(
        heads={"topics": {"kind": "multilabel"}, "level": {"kind": "multiclass", "labels": LEVELS}},
        encoder=str(tiny_encoder_dir),
        max_length=32,
        validation_split=0,
        train={"epochs": 1, "batch_size": 16, "seed": 3},
    )
    clf.fit(make_rows(48, seed=1), show_progress=False, echo=lambda *_: None)
    path = tmp_path_factory.mktemp("model") / "model"
    clf.save(path)
    return path


def _texts(n: int) -> list[str]:
    words = ["python", "code", "bug", "oven", "pasta", "salt", "sleep", "doctor", "water", "the", "very"]
    return [" ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 9)) + f" {i}" for i in range(n)]


def _write(path: Path, texts: list[str]) -> Path:
    """`texts` (and an id column) as a CSV, TSV, JSONL or Parquet file, by the suffix."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), path, row_group_size=1000)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    else:
        sep = "," if path.suffix == ".csv" else "\t"
        path.write_text(f"id{sep}text\n" + "".join(f"{i}{sep}{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    return path


def _peak_bytes(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- constant memory -------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_checking_and_reading_a_file_hold_no_more_for_ten_times_the_rows(tmp_path: Path, suffix: str) -> None:
    # More rows than a Parquet batch (4096) in the small file, so that both read whole batches.
    small, large = _write(tmp_path / f"small{suffix}", _texts(5000)), _write(tmp_path / f"large{suffix}", _texts(50_000))

    def check(path: Path) -> None:
        check_text_file(path, ["text"])

    def read(path: Path) -> None:
        for _ in iter_text_chunks(path, ["text"], chunk_size=100, checked=True):
            pass

    for run in (check, read):
        small_peak = _peak_bytes(lambda run=run: run(small))
        large_peak = _peak_bytes(lambda run=run: run(large))
        # Holding the rows would take ~10x the small file's peak; a bounded pass takes about the same.
        assert large_peak < 1.5 * small_peak + 64_000, (suffix, small_peak, large_peak)


def test_file_prediction_holds_no_more_for_ten_times_the_rows(model_dir: Path, tmp_path: Path) -> None:
    from textheads import TextClassifier

    clf = TextClassifier.load(model_dir)
    small, large = _write(tmp_path / "small.jsonl", _texts(100)), _write(tmp_path / "large.jsonl", _texts(1000))

    def predict(path: Path) -> None:
        for _ in clf.iter_file_records(path, chunk_size=50, batch_size=50):
            pass

    predict(small)  # warm-up: lazily built tokenizer and model state are not the file's
    small_peak, large_peak = _peak_bytes(lambda: predict(small)), _peak_bytes(lambda: predict(large))
    assert large_peak < 1.5 * small_peak + 64_000, (small_peak, large_peak)


_ARROW_PEAK = """
import sys, pyarrow as pa
from textheads.data.dataset import check_text_file, iter_text_chunks
check_text_file(sys.argv[1], ["text"])
for _ in iter_text_chunks(sys.argv[1], ["text"], checked=True):
    pass
print(pa.default_memory_pool().max_memory())
"""


def test_a_parquet_file_is_read_without_its_other_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    blob = "x" * 2000  # a wide column the texts do not need: 20 MB here, many GB in real files
    rows = 10_000
    pq.write_table(pa.table({"text": _texts(rows), "blob": [blob + str(i) for i in range(rows)]}), tmp_path / "wide.parquet", compression="none")
    result = subprocess.run([sys.executable, "-c", _ARROW_PEAK, str(tmp_path / "wide.parquet")], check=True, capture_output=True, text=True, timeout=120)
    assert int(result.stdout.split()[-1]) < rows * len(blob) / 4


# -- a partial output, kept when interrupted, resumed ----------------------------------

_KILLED_AFTER_CHUNKS = """
import os, signal, sys
from textheads import TextClassifier, classifier

model, source, output, chunks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
real, calls = classifier.to_records, []

def to_records(*args, **kwargs):
    calls.append(1)
    if len(calls) > chunks:  # chunks are written (the last perhaps half, still in a buffer): die now
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

classifier.to_records = to_records
TextClassifier.load(model).predict_file_to_jsonl(source, output, chunk_size=50, batch_size=16)
"""


def _textheads(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "textheads", *args], check=False, env=env, capture_output=True, text=True, timeout=300)


def test_a_killed_run_keeps_its_partial_and_resume_writes_what_an_uninterrupted_run_writes(model_dir: Path, tmp_path: Path) -> None:
    from textheads import TextClassifier

    source = _write(tmp_path / "texts.jsonl", _texts(230))
    output = tmp_path / "out.jsonl"
    killed = subprocess.run([sys.executable, "-c", _KILLED_AFTER_CHUNKS, str(model_dir), str(source), str(output), "3"], check=False, timeout=300)
    assert killed.returncode == -9  # SIGKILL: no clean-up ran
    partial, marker = partial_paths(output)
    assert not output.exists() and partial.is_file() and marker.is_file()
    assert 0 < partial.stat().st_size

    clf = TextClassifier.load(model_dir)
    count, _ = clf.predict_file_to_jsonl(source, output, chunk_size=50, batch_size=16, resume=True)
    assert count == 230 and not partial.exists() and not marker.exists()
    whole = tmp_path / "whole.jsonl"
    clf.predict_file_to_jsonl(source, whole, chunk_size=50, batch_size=16)
    assert output.read_bytes() == whole.read_bytes()


def test_an_interrupted_command_says_how_to_resume_and_resume_finishes_it(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(tmp_path / "texts.csv", _texts(9))
    output, whole = tmp_path / "out.jsonl", tmp_path / "whole.jsonl"
    assert main(["predict", str(model_dir), "--input", str(source), "--output", str(whole), "-q"]) == 0
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 0)  # Ctrl-C
        assert main(["predict", str(model_dir), "--input", str(source), "--output", str(output), "-q"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert f"kept in {partial_paths(output)[0]}; add --resume to the same command to continue" in err
    assert main(["predict", str(model_dir), "--input", str(source), "--output", str(output), "-q", "--resume"]) == 0
    assert output.read_bytes() == whole.read_bytes()


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    from textheads import classifier

    real, calls = classifier.to_records, []

    def to_records(*args, **kwargs):
        calls.append(1)
        if len(calls) > chunks:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier, "to_records", to_records)


def test_resume_drops_a_torn_last_line_and_matches_an_uninterrupted_run(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from textheads import TextClassifier

    clf = TextClassifier.load(model_dir)
    source = _write(tmp_path / "texts.csv", _texts(23))
    whole, output = tmp_path / "whole.jsonl", tmp_path / "out.jsonl"
    clf.predict_file_to_jsonl(source, whole, chunk_size=5, batch_size=4)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            clf.predict_file_to_jsonl(source, output, chunk_size=5, batch_size=4)
    partial, _ = partial_paths(output)
    lines = whole.read_bytes().splitlines(keepends=True)
    assert partial.read_bytes() == b"".join(lines[:10])  # two whole chunks, kept
    partial.write_bytes(b"".join(lines[:8]) + lines[8][:30])  # as a kill leaves it: row 9 torn, mid-chunk
    count, _ = clf.predict_file_to_jsonl(source, output, chunk_size=5, batch_size=4, resume=True)
    assert count == 23 and output.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("change", ["input", "model", "batch_size"])
def test_resume_refuses_a_partial_of_another_input_model_or_batching(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    from textheads import TextClassifier

    clf = TextClassifier.load(model_dir)
    source = _write(tmp_path / "texts.jsonl", _texts(12))
    output = tmp_path / "out.jsonl"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            clf.predict_file_to_jsonl(source, output, chunk_size=5)
    batch_size = 64
    if change == "input":
        _write(source, _texts(13))
    elif change == "model":
        clf.set_thresholds("topics", 0.3)
    else:
        batch_size = 8
    expected = {"input": f"written for the input {source.resolve()}, which has changed since", "model": "written by another model", "batch_size": "written with --batch-size 64, not 8"}
    with pytest.raises(ValueError, match="cannot resume from .*" + expected[change]):
        clf.predict_file_to_jsonl(source, output, chunk_size=5, batch_size=batch_size, resume=True)
    assert partial_paths(output)[0].read_bytes()  # left as it was
    count, _ = clf.predict_file_to_jsonl(source, output, chunk_size=5, batch_size=batch_size)  # without --resume: replaced
    assert count == len(source.read_text().splitlines()) and not partial_paths(output)[0].exists()


@pytest.mark.parametrize("which", [0, 1])
def test_a_partial_or_marker_name_textheads_did_not_write_is_left_alone(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: int) -> None:
    source = _write(tmp_path / "texts.jsonl", _texts(3))
    output = tmp_path / "out.jsonl"
    taken = partial_paths(output)[which]
    taken.write_text("my notes\n")
    assert main(["predict", str(model_dir), "--input", str(source), "--output", str(output), "-q"]) == 2
    assert f"{taken} exists and was not written by textheads" in " ".join(capsys.readouterr().err.split())
    assert taken.read_text() == "my notes\n" and not output.exists()


def test_resume_with_nothing_to_resume_predicts_from_the_start(model_dir: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "texts.jsonl", _texts(4))
    output = tmp_path / "out.jsonl"
    assert main(["predict", str(model_dir), "--input", str(source), "--output", str(output), "--resume", "-q"]) == 0
    assert len(output.read_text().splitlines()) == 4


def test_a_bad_row_fails_before_any_partial_is_made(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "texts.jsonl"
    source.write_text('{"text": "fine"}\n{"text": ""}\n')
    output = tmp_path / "out.jsonl"
    assert main(["predict", str(model_dir), "--input", str(source), "--output", str(output), "-q"]) == 2
    assert list(tmp_path.iterdir()) == [source]


def test_resume_needs_an_input_and_an_output(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(model_dir), "python code", "--resume"]) == 2
    assert "--resume continues a run that writes a file's predictions" in " ".join(capsys.readouterr().err.split())
