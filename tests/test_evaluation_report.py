"""`textheads evaluate MODEL DATA --report report.html`: the page, opened in real Chromium."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser import is_blank, render, requires_browser
from conftest import train_toy_model
from textheads.cli import main
from textheads.data.dataset import HeadTargets, LabelledData
from textheads.errors import ConfigError
from textheads.evaluation import evaluate_outputs
from textheads.reports.evaluation import Evaluated, evaluation_page
from textheads.reports.page import is_report
from textheads.specs import HeadSpec

CHARTS = {
    "multilabel": ("precision_recall", "f1_threshold", "cooccurrence", "reliability"),
    "multiclass": ("confusion", "confusion_share", "reliability"),
    "regression": ("predicted_true", "residuals"),
}
TOY_HEADS = {"topics": "multilabel", "level": "multiclass", "score": "regression"}
SECTIONS = ["overview", "summary", "head-topics", "head-level", "head-score", "training"]


@pytest.fixture(scope="module")
def toy(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A three-head model trained with a train_log.jsonl, and its labelled rows (some miss a head's label)."""
    root = tmp_path_factory.mktemp("report")
    clf = train_toy_model(tiny_encoder_dir, root, epochs=2)
    return {"clf": clf, "model": root / "model", "data": root / "dev.jsonl"}


def _expected_charts(heads: dict[str, str]) -> list[str]:
    return [f"{head}.{chart}" for head, kind in heads.items() for chart in CHARTS[kind]]


class _Tables(HTMLParser):
    """Each table of one page section, by caption: its rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: str | None = None
        self._cell: list[str] | None = None
        self._rows: list[list[str]] = []
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows, self._caption = [], ""
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self.tables[self._caption or ""] = self._rows

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self._caption = (self._caption or "") + data
        elif self._cell is not None:
            self._cell.append(data)


def _section_tables(page: Path, key: str) -> dict[str, list[list[str]]]:
    text = page.read_text(encoding="utf-8")
    start = text.index(f'data-section="{key}"')
    parser = _Tables()
    parser.feed(text[start:text.index("</section>", start)])
    return parser.tables


def _shown(value: Any) -> str:
    """A metric as the summary shows it: 4 decimals, whole numbers as they are, None empty."""
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4f}"


@requires_browser
def test_the_cli_writes_a_report_chromium_draws_whole_offline(toy: dict[str, Any], tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    assert main(["evaluate", str(toy["model"]), str(toy["data"]), "--report", str(report), "-q"]) == 0
    assert is_report(report)
    shot = tmp_path / "report.png"
    rendered = render(report, screenshot=shot)
    assert rendered.errors == []
    assert rendered.requests == []
    assert rendered.sections == SECTIONS
    for name in [*_expected_charts(TOY_HEADS), "training.loss", "training.validation"]:
        assert rendered.drawn(name), name
    assert not is_blank(shot)
    assert "loss.topics" in rendered.legends  # a loss curve per head, from train_log.jsonl
    assert "Most confident false positives" in rendered.text and "Largest errors" in rendered.text


def test_the_summary_shows_the_numbers_of_evaluate_json(toy: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = str(toy["model"]), str(toy["data"])
    assert main(["evaluate", model, data, "--json", "-q"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    report = tmp_path / "report.html"
    assert main(["evaluate", model, data, "--output", str(tmp_path / "metrics.json"), "--report", str(report), "-q"]) == 0
    tables = _section_tables(report, "summary")
    for head, kind in TOY_HEADS.items():
        rows = {row[0]: row[1:] for row in tables[f"{head} ({kind})"][1:]}
        scalars = {key: value for key, value in metrics[head].items() if not isinstance(value, (dict, list))}
        assert set(rows) == set(scalars), head
        for key, value in scalars.items():
            assert rows[key][0] == _shown(value), f"{head}.{key}"
        for key, value in metrics[head].get("at_0.5", {}).items():
            assert rows[key][1] == _shown(value), f"{head}.{key} at 0.5"
    assert "ece" in metrics["topics"] and "ece" in metrics["level"]


def test_a_file_that_is_not_a_report_is_refused_and_left_untouched(toy: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.html"
    notes.write_text("<html><body>my notes</body></html>", encoding="utf-8")
    assert main(["evaluate", str(toy["model"]), str(toy["data"]), "--report", str(notes), "-q"]) == 2
    error = capsys.readouterr().err
    assert "--report" in error and "not a textheads report" in error
    assert notes.read_text(encoding="utf-8") == "<html><body>my notes</body></html>"
    with pytest.raises(ConfigError, match="not a textheads report file"):
        toy["clf"].evaluate(toy["data"], report=notes)
    assert notes.read_text(encoding="utf-8") == "<html><body>my notes</body></html>"
    assert main(["evaluate", str(toy["model"]), str(toy["data"]), "--report", str(toy["data"]), "-q"]) == 2  # the input itself
    same = tmp_path / "out.html"
    assert main(["evaluate", str(toy["model"]), str(toy["data"]), "--report", str(same), "--output", str(same), "-q"]) == 2
    assert "both name" in capsys.readouterr().err and not same.exists()


def test_the_python_api_writes_the_page_from_the_metrics_it_returns(toy: dict[str, Any], tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    metrics = toy["clf"].evaluate(toy["data"], report=report)
    assert metrics == toy["clf"].evaluate(toy["data"])
    rows = {row[0]: row[1] for row in _section_tables(report, "summary")["level (multiclass)"][1:]}
    assert rows["accuracy"] == _shown(metrics["level"]["accuracy"])
    toy["clf"].evaluate(toy["data"], report=report)  # an earlier report may be replaced


@requires_browser
def test_a_report_on_an_onnx_export_has_every_head_and_a_note_instead_of_training_curves(toy: dict[str, Any], tmp_path: Path) -> None:
    export = tmp_path / "onnx"
    assert main(["export", str(toy["model"]), "--output", str(export)]) == 0
    report = tmp_path / "report.html"
    assert main(["evaluate", str(export), str(toy["data"]), "--json", "--report", str(report), "-q"]) == 0
    rendered = render(report)
    assert rendered.errors == [] and rendered.requests == []
    assert rendered.sections == SECTIONS
    for name in _expected_charts(TOY_HEADS):
        assert rendered.drawn(name), name
    assert not any(c["name"].startswith("training.") for c in rendered.charts)
    assert "No train_log.jsonl beside this model" in rendered.text


# -- user data on the page: escaped everywhere -----------------------------------

SCRIPT = "</script><script>alert(1)</script>"


def _hostile() -> Evaluated:
    """Four heads over six rows whose texts and label names hold markup; `empty` has no labelled row."""
    specs = {
        "tags": HeadSpec(name="tags", kind="multilabel", labels=["<b>bold</b>", "plain"], threshold=0.4),
        "kind": HeadSpec(name="kind", kind="multiclass", labels=["<i>x</i>", "y"]),
        "value": HeadSpec(name="value", kind="regression"),
        "empty": HeadSpec(name="empty", kind="multiclass", labels=["a", "b"]),
    }
    n = 6
    rng = np.random.default_rng(0)
    tags = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], dtype=np.float32)
    kind = np.array([0, 1, 0, 1, 1, 0])
    value = np.arange(n, dtype=np.float32)
    every = np.ones(n, dtype=bool)
    data = LabelledData(
        texts=[f"{SCRIPT} row {i} <b>not bold</b>" for i in range(n)],
        targets={
            "tags": HeadTargets(tags, every), "kind": HeadTargets(kind, every),
            "value": HeadTargets(value, every), "empty": HeadTargets(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)),
        },
        lines=list(range(2, n + 2)),
    )
    outputs = {
        "tags": rng.random((n, 2)).astype(np.float32),
        "kind": np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55], [0.1, 0.9]], dtype=np.float32),
        "value": value + rng.normal(size=n).astype(np.float32),
        "empty": np.full((n, 2), 0.5, dtype=np.float32),
    }
    return Evaluated(specs, outputs, data, evaluate_outputs(specs, outputs, data))


@requires_browser
def test_texts_and_label_names_are_shown_as_written_never_run(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    evaluation_page(_hostile(), model="<model>", data_name="<data>.jsonl", model_dir=None).write(path)
    source = path.read_text(encoding="utf-8")
    assert SCRIPT not in source and "<b>bold</b>" not in source
    rendered = render(path)
    assert rendered.errors == []  # no alert dialog, no script error
    assert "<b>bold</b>" in rendered.legends  # plotly draws the name as text, not in bold
    assert f"{SCRIPT} row 0 <b>not bold</b>" in rendered.text  # the worst-error tables
    assert "<i>x</i>" in rendered.text and "<model> on <data>.jsonl" in rendered.text
    for name in _expected_charts({"tags": "multilabel", "kind": "multiclass", "value": "regression"}):
        assert rendered.drawn(name), name
    assert not any(c["name"].startswith("empty.") for c in rendered.charts)
    assert "No row of the data has a label for this head" in rendered.text


def test_a_head_without_labelled_rows_gets_a_note_instead_of_charts() -> None:
    page = evaluation_page(_hostile(), model="m", data_name="d", model_dir=None)
    empty = next(s for s in page.sections if s.key == "head-empty")
    assert len(empty.parts) == 1 and "No row of the data has a label for this head" in empty.parts[0]


# -- slow tier: the real default encoder -------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "textheads" / "examples" / "advice"
GOEMOTIONS = Path(os.environ.get("GOEMOTIONS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"))


def _assert_whole(report: Path, heads: dict[str, str], shot: Path) -> Any:
    rendered = render(report, screenshot=shot)
    assert rendered.errors == [] and rendered.requests == []
    assert rendered.sections == ["overview", "summary", *(f"head-{head}" for head in heads), "training"]
    for name in [*_expected_charts(heads), "training.loss", "training.validation"]:
        assert rendered.drawn(name), name
    assert not is_blank(shot)
    return rendered


@pytest.mark.slow
@requires_browser
def test_the_advice_example_report_is_drawn_whole(tmp_path: Path) -> None:
    from textheads import TextClassifier, load_config

    config = load_config(EXAMPLE / "config.yaml", [f"output_dir={tmp_path / 'advice'}", "train.freeze=encoder", "train.epochs=3"])
    TextClassifier.from_config(config).fit(show_progress=False, echo=lambda _: None)
    report = tmp_path / "report.html"
    assert main(["evaluate", str(tmp_path / "advice"), str(EXAMPLE / "test.jsonl"), "--report", str(report), "-q"]) == 0
    _assert_whole(report, {"advice": "multilabel", "audience": "multiclass", "helpfulness": "regression"}, tmp_path / "advice.png")


def _head_rows(source: Path, target: Path, rows: int) -> Path:
    with source.open(encoding="utf-8") as lines:
        target.write_text("".join(line for _, line in zip(range(rows), lines)), encoding="utf-8")
    return target


@pytest.mark.slow
@requires_browser
@pytest.mark.skipif(not (GOEMOTIONS / "train.jsonl").is_file(), reason=f"GoEmotions is not at {GOEMOTIONS} (set GOEMOTIONS_DIR)")
def test_a_goemotions_report_with_28_labels_is_drawn_whole(tmp_path: Path) -> None:
    from textheads import TextClassifier
    from textheads.config import build_config

    labels = (GOEMOTIONS / "labels_emotions.txt").read_text(encoding="utf-8").split()
    files = {split: _head_rows(GOEMOTIONS / f"{split}.jsonl", tmp_path / f"{split}.jsonl", rows) for split, rows in (("train", 3000), ("dev", 600), ("test", 1500))}
    raw = {
        "data": {"train": str(files["train"]), "validation": str(files["dev"])},
        "heads": {"emotions": {"kind": "multilabel", "labels": labels}},
        "train": {"freeze": "encoder", "epochs": 5},
        "output_dir": str(tmp_path / "model"),
    }
    TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    report = tmp_path / "report.html"
    assert main(["evaluate", str(tmp_path / "model"), str(files["test"]), "--report", str(report), "-q"]) == 0
    rendered = _assert_whole(report, {"emotions": "multilabel"}, tmp_path / "goemotions.png")
    assert len(labels) == 28 and len(set(rendered.legends) & set(labels)) >= 25  # a curve per label with positives
    assert report.stat().st_size < 8_000_000  # curves thinned: plotly.js (about 4.7 MB) is most of it
