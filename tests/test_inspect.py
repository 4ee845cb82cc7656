"""`textheads inspect`: a run's data described before training, on the same reading as `train`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from browser import CHROMIUM, is_blank, render, requires_browser
from conftest import make_rows, write_jsonl
from textheads.cli import main
from textheads.config import build_config
from textheads.inspection import data_file_config, inspect_data

HEAVY = "sleep run walk doctor stretch water health exercise rest pain"
"""Ten tokens of the tiny vocabulary: 12 with [CLS] and [SEP], 4 past a max_length of 8."""


def _row(text: str, topics: list[str], level: str | None, score: float | None = 1.0) -> dict[str, Any]:
    row: dict[str, Any] = {"text": text, "topics": topics, "level": level}
    if score is not None:
        row["score"] = score
    return row


@pytest.fixture()
def known(tmp_path: Path, tiny_encoder_dir: Path) -> dict[str, Any]:
    """Hand-made train, dev and test files whose every figure is known (see the comments)."""
    train = write_jsonl(tmp_path / "train.jsonl", [
        _row("python code bug", ["code"], "beginner", 1.0),       # line 1; repeated in test: leakage
        _row("pasta oven", ["cook", "code"], "mid", 2.0),          # line 2; same text as line 4, other level
        _row("python loop", ["code"], None, 3.0),                 # line 3; no level
        _row("pasta oven", ["cook", "code"], "expert", 4.0),       # line 4
        _row(HEAVY, ["health"], "mid", None),                     # line 5; no score; cut at max_length 8
    ])
    dev = write_jsonl(tmp_path / "dev.jsonl", [_row(f"git test {i}", ["code"], "mid") for i in range(5)] + [_row("garlic salt", ["cook"], "beginner")])
    test = write_jsonl(tmp_path / "test.jsonl", [_row("python code bug", ["code"], "beginner"), _row("weather today", ["travel"], "mid")])
    raw = {
        "model": {"encoder": str(tiny_encoder_dir), "max_length": 8},
        "data": {"train": str(train), "validation": str(dev), "test": str(test)},
        "heads": {
            "topics": {"kind": "multilabel", "labels": ["code", "cook", "health", "travel"]},
            "level": {"kind": "multiclass", "labels": ["beginner", "mid", "expert"]},
            "score": {"kind": "regression"},
        },
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return {"raw": raw, "config": config, "train": train, "dev": dev, "test": test}


def _heads(figures: Any) -> dict[str, Any]:
    return {head.name: head for head in figures.heads}


def test_rows_label_counts_and_missing_share_are_counted(known: dict[str, Any]) -> None:
    figures = inspect_data(build_config(known["raw"]))
    assert [(s.name, s.rows, s.source) for s in figures.splits] == [
        ("train", 5, str(known["train"])), ("validation", 6, str(known["dev"])), ("test", 2, str(known["test"])),
    ]
    heads = _heads(figures)
    topics, level, score = heads["topics"], heads["level"], heads["score"]
    assert [(c.label, c.counts) for c in topics.labels] == [  # most frequent first, all labels
        ("code", {"train": 4, "validation": 5, "test": 1}),
        ("cook", {"train": 2, "validation": 1, "test": 0}),
        ("health", {"train": 1, "validation": 0, "test": 0}),
        ("travel", {"train": 0, "validation": 0, "test": 1}),
    ]
    assert [(c.label, c.counts["train"]) for c in level.labels] == [("mid", 2), ("beginner", 1), ("expert", 1)]
    assert level.missing_share == {"train": 0.2, "validation": 0.0, "test": 0.0}
    assert level.labelled["train"] == 4
    assert score.missing_share["train"] == 0.2
    train = score.distribution["train"]
    assert (train.count, train.min, train.median, train.max, train.mean) == (4, 1.0, 2.5, 4.0, 2.5)
    assert score.histogram is not None and sum(score.histogram.counts) == 4


def test_rare_labels_for_thresholds_and_labels_missing_from_training(known: dict[str, Any]) -> None:
    topics = _heads(inspect_data(build_config(known["raw"])))["topics"]
    # thresholds.MIN_POSITIVES is 5: code has 5 validation positives, the others fewer.
    assert topics.too_few_to_tune == ["cook", "health", "travel"]
    assert topics.never_in_train == ["travel"]
    assert topics.only_in_evaluation == ["travel"]
    assert topics.too_few_to_split == []  # a validation file: nothing is split


def test_cooccurrence_pairs_and_labels_always_together(known: dict[str, Any]) -> None:
    topics = _heads(inspect_data(build_config(known["raw"])))["topics"]
    assert [(p.first, p.second, p.rows) for p in topics.pairs] == [("code", "cook", 2)]
    assert [(a.label, a.with_label, a.rows, a.mutual) for a in topics.always_with] == [("cook", "code", 2, False)]
    assert topics.cooccurrence[0] == [4, 2, 0, 0]  # label order: code, cook, health, travel
    assert topics.labels_per_row == {1: 3, 2: 2}


def test_token_lengths_and_cut_texts_against_max_length(known: dict[str, Any]) -> None:
    lengths = inspect_data(build_config(known["raw"])).lengths
    assert lengths.texts == 13 and lengths.max_length == 8
    assert lengths.cut == 1 and lengths.cut_by_split == {"train": 1, "validation": 0, "test": 0}
    assert lengths.percentiles["max"] == 12
    assert lengths.tokens_not_read["max"] == 4 and lengths.tokens_not_read["mean_share"] == pytest.approx(0.4)


def test_windows_count_the_texts_longer_than_max_windows(known: dict[str, Any]) -> None:
    # 10 content tokens, 6 a window, stride 2 (step 4): windows at 0 and 4 cover the text; one window does not.
    raw = {**known["raw"], "model": {**known["raw"]["model"], "long_text": "windows", "window_stride": 2}}
    assert inspect_data(build_config(raw)).lengths.cut == 0
    raw["model"]["max_windows"] = 1
    lengths = inspect_data(build_config(raw)).lengths
    assert lengths.cut == 1 and lengths.max_windows == 1 and lengths.windows["max"] == 1
    assert lengths.tokens_not_read["max"] == 4


def test_duplicates_conflicting_labels_with_their_rows_and_leakage(known: dict[str, Any]) -> None:
    figures = inspect_data(build_config(known["raw"]))
    duplicates = figures.duplicates
    assert duplicates.repeated == {"train": 1, "validation": 0, "test": 0}
    assert duplicates.conflicting == 1
    conflict = duplicates.conflict_examples[0]
    assert conflict.text == "pasta oven" and conflict.heads == ["level", "score"]
    assert [(r.split, r.source, r.line) for r in conflict.rows] == [("train", str(known["train"]), 2), ("train", str(known["train"]), 4)]
    assert duplicates.leaked == {"validation": 0, "test": 1}
    assert [(r.split, r.line) for r in duplicates.leak_examples[0].rows] == [("train", 1), ("test", 1)]
    problems = " ".join(figures.problems)
    assert "train.jsonl lines 2, 4" in problems and "1 test row(s) repeat a training text" in problems


def test_a_held_out_validation_gets_the_sizes_and_rare_labels_of_the_split(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from textheads.data.dataset import load_labelled
    from textheads.data.split import stratified_split

    rows = [_row(f"python code {i}", ["code"], "mid") for i in range(6)] + [_row("pasta oven", ["cook"], "mid"), _row("garlic salt", ["cook", "rare"], "mid")]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    config = data_file_config(train, {"topics": "multilabel"}, encoder=str(tiny_encoder_dir), overrides=["data.validation_split=0.25"])
    figures = inspect_data(config)
    data, specs = load_labelled(train, list(config.heads.values()), ["text"], split="train", allow_new_labels=True)
    kept, held_out, _ = stratified_split(data, specs, 0.25, config.train.seed)
    assert [(s.name, s.rows) for s in figures.splits] == [("train", len(kept)), ("validation", len(held_out))]
    assert figures.splits[1].source.startswith(f"held out of {train}")
    assert _heads(figures)["topics"].too_few_to_split == ["rare"]


def _bad_files(tmp_path: Path, known: dict[str, Any], case: str) -> list[str]:
    """--set options that make the known config fail as `case` says."""
    if case == "bad row":
        bad = write_jsonl(tmp_path / "bad.jsonl", [_row("fine", ["code"], "mid"), _row("  ", ["code"], "mid")])
        return ["--set", f"data.train={bad}"]
    if case == "unknown label":
        bad = write_jsonl(tmp_path / "bad.jsonl", [_row("fine", ["code"], "senior")])
        return ["--set", f"data.validation={bad}"]
    if case == "wrong column":
        return ["--set", "heads.level.column=grade"]
    if case == "unlabelled after the split":
        # The one row with a score (row 2) is held out (the split is seeded: this stays so).
        rows = [_row(f"python code {i}", ["code" if i % 2 else "cook"], "mid", 1.0 if i == 2 else None) for i in range(10)]
        bad = write_jsonl(tmp_path / "bad.jsonl", rows)
        return ["--set", f"data.train={bad}", "--set", "data.validation=null", "--set", "data.validation_split=0.5", "--set", "data.test=null"]
    assert case == "max_length past the encoder"
    return ["--set", "model.max_length=512"]


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("bad row", "line 2, column 'text': text is empty"),
        ("unknown label", "line 1, column 'level': unknown label 'senior'"),
        ("wrong column", "column 'grade' not found"),
        ("unlabelled after the split", "head 'score' has no labelled row to train on"),
        ("max_length past the encoder", "model.max_length: 512 is more than encoder"),
    ],
)
def test_errors_are_exactly_those_of_train(known: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, says: str) -> None:
    options = _bad_files(tmp_path, known, case)
    output = ["--set", f"output_dir={tmp_path / 'run'}"]
    assert main(["train", str(known["config"]), "-q", *options, *output]) == 2
    trained = capsys.readouterr().err
    assert main(["inspect", str(known["config"]), *options]) == 2
    inspected = capsys.readouterr().err
    assert inspected == trained and inspected.startswith("Error:") and "Traceback" not in inspected
    assert says in " ".join(inspected.split())
    assert not (tmp_path / "run").exists()


def test_a_data_file_with_heads_gives_the_errors_of_train_too(known: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_encoder_dir: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [_row("fine", ["code"], "mid"), _row("", ["code"], "mid")])
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"model": {"encoder": str(tiny_encoder_dir)}, "data": {"train": str(bad)}, "heads": {"topics": {"kind": "multilabel"}}, "output_dir": str(tmp_path / "run")}))
    assert main(["train", str(config), "-q"]) == 2
    trained = capsys.readouterr().err
    assert main(["inspect", str(bad), "--heads", "topics:multilabel", "--encoder", str(tiny_encoder_dir)]) == 2
    assert capsys.readouterr().err == trained
    assert "line 2, column 'text': text is empty" in " ".join(trained.split())


def test_a_data_file_with_heads_is_inspected_with_its_options(known: dict[str, Any], tiny_encoder_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["inspect", str(known["train"]), "--heads", "topics:multilabel,level:multiclass", "--heads", "score:regression",
            "--encoder", str(tiny_encoder_dir), "--max-length", "9", "--text-column", "text", "--json", "--set", "data.validation_split=0.4"]
    assert main(args) == 0
    figures = json.loads(capsys.readouterr().out)
    assert [(h["name"], h["kind"]) for h in figures["heads"]] == [("topics", "multilabel"), ("level", "multiclass"), ("score", "regression")]
    assert figures["lengths"]["max_length"] == 9 and figures["lengths"]["encoder"] == str(tiny_encoder_dir)
    assert [s["name"] for s in figures["splits"]] == ["train", "validation"] and sum(s["rows"] for s in figures["splits"]) == 5


def test_heads_without_a_kind_get_the_kind_their_cells_show(known: dict[str, Any], tiny_encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    encoder = ["--encoder", str(tiny_encoder_dir)]
    rows = write_jsonl(tmp_path / "rows.jsonl", make_rows(20))  # scores such as 2.37
    assert main(["inspect", str(rows), "--heads", "topics,level,score", "--json", *encoder]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert [(h["name"], h["kind"]) for h in figures["heads"]] == [("topics", "multilabel"), ("level", "multiclass"), ("score", "regression")]
    csv = tmp_path / "stars.csv"
    csv.write_text('text,tags,stars,grade\npython code,"[""a"", ""b""]",1,A\npasta oven,[],5,B\n', encoding="utf-8")
    assert main(["inspect", str(csv), "--heads", "tags,grade", "--json", *encoder, "--set", "data.validation_split=0"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert [(h["name"], h["kind"]) for h in figures["heads"]] == [("tags", "multilabel"), ("grade", "multiclass")]
    # Whole numbers of few values may be classes or a scale: asked, never guessed.
    assert main(["inspect", str(csv), "--heads", "stars", *encoder]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot tell the kind of head 'stars'" in err and "--heads stars:multiclass or stars:regression" in err
    assert main(["inspect", str(csv), "--heads", "rating", *encoder]) == 2
    assert "column 'rating' not found" in " ".join(capsys.readouterr().err.split())


def test_the_terminal_shows_every_label_as_a_bar_and_the_problems(known: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(known["config"])]) == 0
    out = capsys.readouterr().out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert {"code", "cook", "health", "travel", "beginner", "mid", "expert"} <= set(lines)
    assert lines["code"].count("█") > lines["cook"].count("█") > lines["health"].count("█") > 0  # bars scale with the count
    assert "█" not in lines["travel"]
    flat = " ".join(out.split())
    assert "Problems" in flat and "1 of 13 texts are longer than max_length, 8 tokens" in flat
    assert "conflicting on level, score: 'pasta oven' at train.jsonl lines 2, 4" in flat


def test_json_holds_every_figure(known: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(known["config"]), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)  # nothing else on stdout
    assert set(figures) == {"splits", "heads", "lengths", "duplicates", "problems"}
    assert figures["duplicates"]["conflicting"] == 1 and figures["lengths"]["cut"] == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["inspect", "{train}"], "name its heads, e.g. --heads"),
        (["inspect", "{train}", "--heads", "topics:multi"], "expected NAME or NAME:KIND with KIND one of multilabel, multiclass, regression"),
        (["inspect", "{train}", "--heads", ":multilabel"], "expected NAME or NAME:KIND"),
        (["inspect", "{train}", "--heads", "a:regression,a:multiclass"], "head 'a' is named twice"),
        (["inspect", "{config}", "--heads", "topics:multilabel"], "--heads describe a data file"),
        (["inspect", "{config}", "--max-length", "64"], "set its keys with --set"),
        (["inspect", "{train}", "--heads", "topics:multilabel", "--max-length", "4"], "--max-length"),
        (["inspect"], "Missing argument"),
    ],
)
def test_usage_errors_exit_2_with_the_usage(known: dict[str, Any], capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    assert main([a.format(train=known["train"], config=known["config"]) for a in args]) == 2
    captured = capsys.readouterr()
    err = " ".join((captured.out + captured.err).replace("│", " ").split())  # click may draw a box
    assert "Usage:" in err and says in err and "Traceback" not in err


def test_an_existing_file_that_is_not_a_report_is_left_untouched(known: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.html"
    notes.write_text("<html><body>my notes</body></html>", encoding="utf-8")
    assert main(["inspect", str(known["config"]), "--report", str(notes)]) == 2
    assert "not a textheads report file" in " ".join(capsys.readouterr().err.split())
    assert notes.read_text(encoding="utf-8") == "<html><body>my notes</body></html>"
    assert main(["inspect", str(known["config"]), "--report", str(known["train"])]) == 2  # an input file neither
    assert "is the input file" in " ".join(capsys.readouterr().err.split())


@requires_browser
def test_the_report_draws_every_section_and_a_chart_per_head_in_chromium(known: dict[str, Any], tmp_path: Path) -> None:
    from textheads.reports.inspection import SECTIONS

    page = tmp_path / "inspect.html"
    assert main(["inspect", str(known["config"]), "--report", str(page), "--json"]) == 0
    assert main(["inspect", str(known["config"]), "--report", str(page)]) == 0  # an earlier report is replaced
    shot = tmp_path / "inspect.png"
    rendered = render(page, screenshot=shot)
    assert rendered.errors == [] and rendered.requests == []
    assert rendered.sections == list(SECTIONS)
    for chart in ("head-topics", "head-level", "head-score", "cooccurrence-topics", "lengths"):
        assert rendered.drawn(chart), chart
    assert not is_blank(shot)
    text = page.read_text(encoding="utf-8")
    assert "pasta oven" in text and "max_length 8" in text


@requires_browser
def test_label_names_are_drawn_as_written_in_the_report(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    rows = [{"text": f"python code {i}", "tags": ["<b>bold</b>"] if i % 2 else ["plain"]} for i in range(12)]
    data = write_jsonl(tmp_path / "tags.jsonl", rows)
    page = tmp_path / "inspect.html"
    args = ["inspect", str(data), "--heads", "tags:multilabel", "--encoder", str(tiny_encoder_dir), "--report", str(page)]
    assert main([*args, "--set", "data.validation_split=0"]) == 0
    rendered = render(page)
    assert rendered.errors == []
    assert "<b>bold</b>" in rendered.ticks  # plotly would draw the name bold, as "bold", unless escaped


def test_data_suffixes_are_the_readers() -> None:
    from textheads.cli.inspect import _DATA_SUFFIXES
    from textheads.data.reading import SUPPORTED_SUFFIXES

    assert _DATA_SUFFIXES == SUPPORTED_SUFFIXES


@pytest.mark.slow
def test_inspect_runs_on_the_advice_example(capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(__file__).resolve().parents[1] / "src" / "textheads" / "examples" / "advice" / "config.yaml"
    assert main(["inspect", str(config), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["rows"]) for s in figures["splits"]] == [("train", 420), ("validation", 90), ("test", 90)]
    assert [h["name"] for h in figures["heads"]] == ["advice", "audience", "helpfulness"]
    assert figures["lengths"]["cut"] == 0 and figures["lengths"]["encoder"] == "default"


GOEMOTIONS = Path(os.environ.get("GOEMOTIONS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"))


@pytest.mark.slow
@pytest.mark.skipif(not (GOEMOTIONS / "train.jsonl").is_file(), reason=f"GoEmotions not found at {GOEMOTIONS} (set GOEMOTIONS_DIR)")
def test_inspect_runs_on_goemotions_with_its_28_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "goemotions.yaml"
    files = {"train": "train.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}
    heads = {name: {"kind": "multilabel", "labels_file": str(GOEMOTIONS / f"labels_{name}.txt")} for name in ("emotions", "sentiment", "ekman")}
    config.write_text(yaml.safe_dump({"data": {k: str(GOEMOTIONS / v) for k, v in files.items()}, "heads": heads}))
    page = tmp_path / "goemotions.html"
    assert main(["inspect", str(config), "--json", "--report", str(page)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["rows"]) for s in figures["splits"]] == [("train", 43410), ("validation", 5426), ("test", 5427)]
    emotions = next(h for h in figures["heads"] if h["name"] == "emotions")
    counts = {c["label"]: c["counts"]["train"] for c in emotions["labels"]}
    assert len(counts) == 28 and counts["grief"] == 77  # as the data's README says
    assert emotions["labels"][0]["label"] == "neutral" and emotions["labels"][-1]["label"] == "grief"
    if CHROMIUM is not None:
        rendered = render(page)
        assert rendered.errors == [] and all(rendered.drawn(f"head-{name}") for name in heads)

