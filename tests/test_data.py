"""Tests of reading and checking labelled data: textheads.data.

Every user-facing problem must be a DataError that says where it is: the file,
the 1-based line an editor shows, and the column when one applies.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from textheads.data import LabelledData, load_labelled, load_texts
from textheads.data.dataset import iter_text_chunks, require_labelled_rows
from textheads.errors import DataError
from textheads.specs import HeadSpec

TOPICS = ["code", "cook", "health"]
LEVELS = ["junior", "mid", "senior"]


# ----------------------------------------------------------------------------- helpers


def topics_head(**kw: Any) -> HeadSpec:
    return HeadSpec(name="topics", kind="multilabel", **{"labels": TOPICS, **kw})


def level_head(**kw: Any) -> HeadSpec:
    return HeadSpec(name="level", kind="multiclass", **{"labels": LEVELS, **kw})


def score_head(**kw: Any) -> HeadSpec:
    return HeadSpec(**{"name": "score", "kind": "regression", **kw})


ALL_HEADS = [topics_head(), level_head(), score_head()]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """One line per item: dicts are dumped as JSON, strings are written as they are."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_table(path: Path, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    """A CSV (or TSV) file written with the csv module, so quoting is always right."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def where(path: Path | str, line: int | None = None, column: str | None = None) -> str:
    """Regex for the start of a DataError message: 'FILE, line N, column 'C': '."""
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return "^" + re.escape(", ".join(parts) + ": ")


def load(source: Any, heads: list[HeadSpec] | None = None, **kw: Any) -> tuple[LabelledData, list[HeadSpec]]:
    kw.setdefault("split", "train")
    return load_labelled(source, heads if heads is not None else ALL_HEADS, ["text"], **kw)


GOOD = {"text": "fine row", "topics": ["code"], "level": "mid", "score": 1.0}


# ----------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize(
    ("bad_row", "column", "message"),
    [
        ({**GOOD, "text": ""}, "text", "text is empty; expected a non-empty string"),
        ({**GOOD, "text": "  \t "}, "text", "text is empty; expected a non-empty string"),
        ({**GOOD, "text": 42}, "text", r"text is not a string \(int\); expected a non-empty string"),
        ({**GOOD, "text": None}, "text", "text is missing; expected a non-empty string"),
        ({**GOOD, "score": "abc"}, "score", "expected a number; got 'abc'"),
        ({**GOOD, "score": "inf"}, "score", "expected a finite number"),
        ({**GOOD, "score": True}, "score", "expected a number; got True"),
        ({**GOOD, "level": ["mid", "senior"]}, "level", r"expected one label for a multiclass head; got 2"),
        ({**GOOD, "level": True}, "level", r"expected label names \(strings\); got True"),
        ({**GOOD, "topics": '["code", '}, "topics", "expected a JSON list of labels"),
        ({**GOOD, "topics": {"code": 1}}, "topics", "expected a list of labels or a delimited string"),
        ({**GOOD, "topics": ["code", None]}, "topics", r"expected label names \(strings\); got None"),
    ],
)
def test_bad_cell_names_file_line_and_column(
    tmp_path: Path, bad_row: dict, column: str, message: str
) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [GOOD, bad_row, GOOD])
    with pytest.raises(DataError, match=where(path, 2, column) + message) as info:
        load(path)
    assert (info.value.path, info.value.line, info.value.column) == (str(path), 2, column)


@pytest.mark.parametrize("split", ["validation", "test"])
def test_label_outside_label_set_in_evaluation_data(tmp_path: Path, split: str) -> None:
    path = write_jsonl(tmp_path / "dev.jsonl", [GOOD, GOOD, {**GOOD, "level": "principal"}])
    with pytest.raises(
        DataError,
        match=where(path, 3, "level")
        + r"unknown label 'principal'; expected one of \['junior', 'mid', 'senior'\]",
    ):
        load(path, split=split, allow_new_labels=False)


def test_unknown_multilabel_label_in_evaluation_data(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dev.jsonl", [{**GOOD, "topics": ["code", "sport"]}])
    with pytest.raises(
        DataError, match=where(path, 1, "topics") + "unknown label 'sport'; expected labels from"
    ):
        load(path, split="validation")


def test_unknown_label_in_training_data_when_spec_gives_labels(tmp_path: Path) -> None:
    # allow_new_labels only fills heads that have no labels; a given label set is binding.
    path = write_jsonl(tmp_path / "train.jsonl", [GOOD, {**GOOD, "level": "intern"}])
    with pytest.raises(DataError, match=where(path, 2, "level") + "unknown label 'intern'"):
        load(path, split="train", allow_new_labels=True)


def test_evaluation_data_for_a_head_without_labels_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dev.jsonl", [GOOD])
    with pytest.raises(DataError, match=where(path) + "head 'level' has no label set"):
        load(path, [HeadSpec(name="level", kind="multiclass")], split="validation")


@pytest.mark.parametrize(
    ("columns", "row", "missing"),
    [
        (["body", "topics", "level", "score"], ["x", "[]", "mid", "1"], "text"),
        (["text", "topics", "score"], ["x", "[]", "1"], "level"),
    ],
)
def test_missing_column_lists_the_columns_the_file_has(
    tmp_path: Path, columns: list[str], row: list[str], missing: str
) -> None:
    path = write_table(tmp_path / "train.csv", columns, [row])
    expected = re.escape(f"column {missing!r} not found; the file has columns {sorted(columns)}")
    with pytest.raises(DataError, match=where(path) + expected) as info:
        load(path)
    assert info.value.line is None


def test_missing_column_in_jsonl_lists_keys_of_all_rows(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "train.jsonl", [{"text": "a", "topics": ["code"]}, {"text": "b", "extra": 1}]
    )
    with pytest.raises(
        DataError,
        match=re.escape("column 'level' not found; the file has columns ['extra', 'text', 'topics']"),
    ):
        load(path, [topics_head(), level_head()])


def test_row_with_no_label_for_any_head(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [GOOD, GOOD, {"text": "nothing here", "level": None}])
    with pytest.raises(
        DataError,
        match=where(path, 3)
        + re.escape("the row has no label for any head (columns ['level', 'score', 'topics'])"),
    ) as info:
        load(path)
    assert info.value.column is None


def test_malformed_json_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [GOOD, '{"text": "oops", "level": }', GOOD])
    with pytest.raises(
        DataError, match=where(path, 2) + r"not valid JSON \(Expecting value at character \d+\)"
    ):
        load(path)


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [GOOD, '["text", "level"]'])
    with pytest.raises(DataError, match=where(path, 2) + "expected a JSON object per line; got list"):
        load(path)


def test_csv_row_with_wrong_number_of_fields(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,level\nfirst,mid\nsecond,mid,extra\n", encoding="utf-8")
    with pytest.raises(DataError, match=where(path, 3) + "expected 2 fields as in the header; got 3"):
        load(path, [level_head()])


@pytest.mark.parametrize(
    ("name", "shown"), [("train.txt", "'.txt'"), ("train.xlsx", "'.xlsx'"), ("train", "'(none)'")]
)
def test_unsupported_file_suffix(tmp_path: Path, name: str, shown: str) -> None:
    path = tmp_path / name
    path.write_text("text\nhello\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=where(path) + re.escape(f"unsupported file type {shown}; expected one of .csv, .tsv")
    ):
        load(path)


@pytest.mark.parametrize("name", ["absent.jsonl", "absent.csv", "absent.parquet"])
def test_file_not_found(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(DataError, match=where(path) + "file not found$"):
        load(path)
    with pytest.raises(DataError, match=where(path) + "file not found$"):
        load_texts(path, ["text"])


def test_csv_with_only_a_header_has_no_data_rows(tmp_path: Path) -> None:
    path = write_table(tmp_path / "train.csv", ["text", "level"], [])
    with pytest.raises(DataError, match=where(path) + "the file has no data rows"):
        load(path, [level_head()])


def test_empty_csv_has_no_header(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=where(path) + "the file is empty; expected a header row"):
        load(path, [level_head()])


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {**GOOD, "text": ""},  # line 2
        {**GOOD, "score": "abc"},  # line 3
        GOOD,
        {**GOOD, "level": ["mid", "senior"]},  # line 5
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 2, column 'text': text is empty")
    assert "\n2 more problem(s) in this file:\n" in message
    assert "  line 3, column 'score': expected a number; got 'abc'" in message
    assert "  line 5, column 'level': expected one label for a multiclass head; got 2" in message


def test_many_problems_are_capped_with_a_count(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "", "level": "mid"}] * 15)
    with pytest.raises(DataError, match=where(path, 1, "text")) as info:
        load(path, [level_head()])
    message = str(info.value)
    assert "14 more problem(s) in this file:" in message
    assert "  line 10, column 'text'" in message  # the first 10 are shown in full
    assert "  line 11," not in message
    assert message.endswith("  ... and 5 more")


def test_unknown_labels_in_several_rows_are_all_reported(tmp_path: Path) -> None:
    rows = [{**GOOD, "level": "intern"}, GOOD, {**GOOD, "level": "boss"}]
    path = write_jsonl(tmp_path / "dev.jsonl", rows)
    with pytest.raises(DataError, match=where(path, 1, "level") + "unknown label 'intern'") as info:
        load(path, split="validation")
    assert "1 more problem(s)" in str(info.value)
    assert "line 3, column 'level': unknown label 'boss'" in str(info.value)


def test_non_mapping_record_in_memory() -> None:
    with pytest.raises(
        DataError, match=where("<records>", 2) + "expected a mapping of column to value; got list"
    ):
        load([GOOD, ["not", "a", "dict"]])


# ----------------------------------------------------------------------------- line numbers


def test_csv_header_is_line_1_so_first_data_row_is_line_2(tmp_path: Path) -> None:
    path = write_table(tmp_path / "train.csv", ["text", "level"], [["", "mid"], ["ok", "mid"]])
    with pytest.raises(DataError, match=where(path, 2, "text")):
        load(path, [level_head()])
    good = write_table(tmp_path / "good.csv", ["text", "level"], [["a", "mid"], ["b", "junior"]])
    assert load(good, [level_head()])[0].lines == [2, 3]


def test_jsonl_lines_are_1_based_and_blank_lines_count(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(
        json.dumps(GOOD) + "\n\n   \n" + json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "text": ""}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=where(path, 5, "text")):
        load(path)
    path.write_text(json.dumps(GOOD) + "\n\n   \n" + json.dumps(GOOD) + "\n", encoding="utf-8")
    data, _ = load(path)
    assert data.lines == [1, 4]
    assert len(data) == 2


def test_tsv_is_read_with_tabs(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "train.tsv",
        ["text", "topics", "level", "score"],
        [["tabs, commas, fine", "code,cook", "mid", "2.5"], ["second", "[]", "", ""]],
        delimiter="\t",
    )
    data, _ = load(path, [topics_head(separator=","), level_head(), score_head()])
    assert data.texts == ["tabs, commas, fine", "second"]
    assert data.lines == [2, 3]
    np.testing.assert_array_equal(data.targets["topics"].values, [[1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(data.targets["level"].values, [1, -100])
    assert data.targets["score"].values[0] == 2.5
    bad = write_table(tmp_path / "bad.tsv", ["text", "level"], [["a", "mid"], ["b", "ceo"]], delimiter="\t")
    with pytest.raises(DataError, match=where(bad, 3, "level") + "unknown label 'ceo'"):
        load(bad, [level_head()], split="validation")


def test_csv_quoted_multiline_cell_keeps_following_lines_right(tmp_path: Path) -> None:
    # Line 1 header, line 2 one-line row, lines 3-5 a row whose text spans three lines, line 6 bad.
    path = write_table(
        tmp_path / "train.csv",
        ["text", "level"],
        [["one line", "mid"], ["first\nsecond\nthird", "senior"], ["bad level row", "nope"]],
    )
    assert path.read_text(encoding="utf-8").count("\n") == 6
    with pytest.raises(DataError, match=where(path, 6, "level") + "unknown label 'nope'"):
        load(path, [level_head()])
    path = write_table(
        tmp_path / "ok.csv", ["text", "level"], [["one", "mid"], ["a\nb\nc", "senior"], ["last", "junior"]]
    )
    data, _ = load(path, [level_head()])
    assert data.lines == [2, 3, 6]
    assert data.texts[1] == "a\nb\nc"


def test_csv_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,level\nfirst,mid\n\nsecond,senior\n", encoding="utf-8")
    data, _ = load(path, [level_head()])
    assert data.lines == [2, 4]


# ----------------------------------------------------------------------------- missing vs empty


ABSENT = object()


def _row(column: str, value: Any) -> dict[str, Any]:
    row = {"text": "row without a label", "other": 1.0}
    if value is not ABSENT:
        row[column] = value
    return row


@pytest.mark.parametrize(
    "missing", [None, float("nan"), ABSENT, "", "   "], ids=["null", "nan", "absent", "empty", "blank"]
)
@pytest.mark.parametrize(
    ("head", "present", "expected_missing_value"),
    [
        (topics_head(), ["cook"], [0.0, 0.0, 0.0]),
        (level_head(), "senior", -100),
        (score_head(), 3.0, math.nan),
    ],
    ids=["multilabel", "multiclass", "regression"],
)
def test_missing_cells_are_masked_for_every_kind(
    head: HeadSpec, present: Any, expected_missing_value: Any, missing: Any
) -> None:
    # A second head keeps the row from having no label at all.
    heads = [head, score_head(name="other")]
    records = [{"text": "labelled", head.name: present, "other": 1.0}, _row(head.name, missing)]
    data, _ = load(records, heads)
    target = data.targets[head.name]
    np.testing.assert_array_equal(target.mask, [True, False])
    np.testing.assert_array_equal(target.values[1], expected_missing_value)


def test_empty_list_is_a_real_multilabel_answer() -> None:
    records = [{"text": "none of them", "topics": []}, {"text": "not answered", "topics": None, "score": 1}]
    data, _ = load(records, [topics_head(), score_head()])
    topics = data.targets["topics"]
    np.testing.assert_array_equal(topics.mask, [True, False])
    np.testing.assert_array_equal(topics.values, np.zeros((2, 3)))


def test_csv_empty_list_cell_versus_empty_cell(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "train.csv",
        ["text", "topics", "score"],
        [["empty list", "[]", ""], ["empty cell", "", "2"], ["labels", '["code", "health"]', ""]],
    )
    data, _ = load(path, [topics_head(), score_head()])
    topics = data.targets["topics"]
    np.testing.assert_array_equal(topics.mask, [True, False, True])
    np.testing.assert_array_equal(topics.values, [[0, 0, 0], [0, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(data.targets["score"].mask, [False, True, False])


def test_parquet_null_and_nan_are_missing(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "text": ["a", "b", "c", "d"],
            "level": ["mid", None, "junior", "senior"],
            "score": [1.5, 2.0, None, float("nan")],
        }
    )
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    data, _ = load(path, [level_head(), score_head()])
    np.testing.assert_array_equal(data.targets["level"].mask, [True, False, True, True])
    np.testing.assert_array_equal(data.targets["level"].values, [1, -100, 0, 2])
    np.testing.assert_array_equal(data.targets["score"].mask, [True, True, False, False])
    assert np.isnan(data.targets["score"].values[2:]).all()


# ----------------------------------------------------------------------------- parsing cells


def test_multilabel_from_json_list_in_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "topics": ["health", "code"]}])
    data, _ = load(path, [topics_head()])
    np.testing.assert_array_equal(data.targets["topics"].values, [[1, 0, 1]])


def test_multilabel_from_delimited_string_with_separator(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "train.csv", ["text", "topics"], [["a", "code, cook"], ["b", "health,"], ["c", "cook"]]
    )
    data, _ = load(path, [topics_head(separator=",")])
    np.testing.assert_array_equal(data.targets["topics"].values, [[1, 1, 0], [0, 0, 1], [0, 1, 0]])


def test_multilabel_string_without_separator_is_one_label() -> None:
    _, specs = load(
        [{"text": "a", "topics": "code,cook"}, {"text": "b", "topics": "x"}],
        [HeadSpec(name="topics", kind="multilabel")],
        allow_new_labels=True,
    )
    assert specs[0].labels == ["code,cook", "x"]


def test_multilabel_from_json_list_string_in_csv(tmp_path: Path) -> None:
    path = write_table(tmp_path / "train.csv", ["text", "topics"], [["a", '["a", "b"]'], ["b", '["b"]']])
    assert '"[""a"", ""b""]"' in path.read_text(encoding="utf-8")
    data, specs = load(
        path, [HeadSpec(name="topics", kind="multilabel", separator="|")], allow_new_labels=True
    )
    assert specs[0].labels == ["a", "b"]
    np.testing.assert_array_equal(data.targets["topics"].values, [[1, 1], [0, 1]])


def test_multiclass_from_string_int_and_one_item_list() -> None:
    head = HeadSpec(name="stars", kind="multiclass", labels=["1", "2", "3"])
    records = [
        {"text": "a", "stars": "2"},
        {"text": "b", "stars": 3},
        {"text": "c", "stars": [1]},
        {"text": "d", "stars": " 2 "},
    ]
    data, _ = load(records, [head])
    np.testing.assert_array_equal(data.targets["stars"].values, [1, 2, 0, 1])
    assert data.targets["stars"].values.dtype == np.int64


def test_int_labels_become_strings_when_discovered() -> None:
    records = [{"text": "a", "stars": 5, "tags": [1, 2]}, {"text": "b", "stars": 1, "tags": [2]}]
    heads = [HeadSpec(name="stars", kind="multiclass"), HeadSpec(name="tags", kind="multilabel")]
    _, specs = load(records, heads, allow_new_labels=True)
    assert specs[0].labels == ["1", "5"]
    assert specs[1].labels == ["1", "2"]


@pytest.mark.parametrize(("cell", "expected"), [("3.5", 3.5), (" -2 ", -2.0), ("1e3", 1000.0), ("7", 7.0)])
def test_regression_from_numeric_string_in_csv(tmp_path: Path, cell: str, expected: float) -> None:
    path = write_table(tmp_path / "train.csv", ["text", "score"], [["a", cell]])
    data, _ = load(path, [score_head()])
    assert data.targets["score"].values.dtype == np.float32
    assert data.targets["score"].values[0] == pytest.approx(expected)


# ----------------------------------------------------------------------------- label discovery and encoding


def test_labels_are_discovered_as_sorted_union() -> None:
    heads = [
        HeadSpec(name="topics", kind="multilabel"),
        HeadSpec(name="level", kind="multiclass"),
        score_head(),
    ]
    records = [
        {"text": "a", "topics": ["zeta", "alpha"], "level": "senior", "score": 1},
        {"text": "b", "topics": ["mid"], "level": "junior", "score": None},
        {"text": "c", "topics": [], "level": None, "score": 2.5},
    ]
    data, specs = load(records, heads, allow_new_labels=True)
    assert [s.name for s in specs] == ["topics", "level", "score"]
    assert specs[0].labels == ["alpha", "mid", "zeta"]
    assert specs[1].labels == ["junior", "senior"]
    assert specs[2] is heads[2]
    assert heads[0].labels is None  # the given specs are not changed

    topics, level, score = (data.targets[n] for n in ("topics", "level", "score"))
    assert topics.values.dtype == np.float32 and topics.values.shape == (3, 3)
    np.testing.assert_array_equal(topics.values, [[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(topics.mask, [True, True, True])
    assert level.values.dtype == np.int64
    np.testing.assert_array_equal(level.values, [1, 0, -100])
    np.testing.assert_array_equal(level.mask, [True, True, False])
    assert score.values.dtype == np.float32
    np.testing.assert_array_equal(score.values, [1.0, np.nan, 2.5])
    np.testing.assert_array_equal(score.mask, [True, False, True])
    assert topics.mask.dtype == level.mask.dtype == score.mask.dtype == np.bool_


def test_given_labels_keep_their_order() -> None:
    head = HeadSpec(name="level", kind="multiclass", labels=["senior", "junior"])
    data, specs = load(
        [{"text": "a", "level": "junior"}, {"text": "b", "level": "senior"}], [head], allow_new_labels=True
    )
    assert specs[0].labels == ["senior", "junior"]
    np.testing.assert_array_equal(data.targets["level"].values, [1, 0])


def test_multiclass_column_with_one_distinct_label_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "train.jsonl", [{"text": "a", "level": "mid"}, {"text": "b", "level": "mid"}]
    )
    with pytest.raises(
        DataError,
        match=where(path)
        + re.escape("head 'level' is multiclass but column 'level' holds 1 distinct label(s)"),
    ):
        load(path, [HeadSpec(name="level", kind="multiclass")], allow_new_labels=True)


def test_multilabel_column_with_no_labels_at_all_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "topics": []}])
    with pytest.raises(DataError, match=where(path) + "column 'topics' holds no labels"):
        load(path, [HeadSpec(name="topics", kind="multilabel")], allow_new_labels=True)


def test_head_reads_its_configured_column() -> None:
    head = HeadSpec(name="level", kind="multiclass", column="seniority", labels=LEVELS)
    data, _ = load([{"text": "a", "seniority": "senior"}], [head])
    np.testing.assert_array_equal(data.targets["level"].values, [2])


# ----------------------------------------------------------------------------- text columns


def test_several_text_columns_are_joined_with_the_separator() -> None:
    records = [{"title": "Title", "body": "Body text", "level": "mid"}]
    data, _ = load_labelled(records, [level_head()], ["title", "body"], split="train", separator=" | ")
    assert data.texts == ["Title | Body text"]
    assert load_texts(records, ["body", "title"], separator="\n") == ["Body text\nTitle"]


def test_bad_second_text_column_is_named(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [{"title": "T", "body": "B", "level": "mid"}, {"title": "T", "body": " ", "level": "mid"}],
    )
    with pytest.raises(DataError, match=where(path, 2, "body") + "text is empty"):
        load_labelled(path, [level_head()], ["title", "body"], split="train")


def test_load_texts_reads_text_and_reports_problems(tmp_path: Path) -> None:
    path = write_table(tmp_path / "predict.csv", ["id", "text"], [["1", "hello"], ["2", "world"]])
    assert load_texts(path, ["text"]) == ["hello", "world"]
    bad = write_table(tmp_path / "bad.csv", ["id", "text"], [["1", "hello"], ["2", ""], ["3", " "]])
    with pytest.raises(DataError, match=where(bad, 3, "text") + "text is empty") as info:
        load_texts(bad, ["text"])
    assert "1 more problem(s)" in str(info.value) and "line 4, column 'text'" in str(info.value)
    with pytest.raises(
        DataError,
        match=where(path) + re.escape("column 'body' not found; the file has columns ['id', 'text']"),
    ):
        load_texts(path, ["body"])


# ----------------------------------------------------------------------------- sources


def test_records_in_memory_match_a_file(tmp_path: Path) -> None:
    records = [
        {"text": "a", "topics": ["code"], "level": "mid", "score": 1.0},
        {"text": "b", "topics": [], "level": None, "score": 2.0},
        {"text": "c", "topics": None, "level": "senior"},
    ]
    from_memory, memory_specs = load(records)
    from_file, file_specs = load(write_jsonl(tmp_path / "train.jsonl", records))
    assert from_memory.source == "<records>"
    assert from_file.source == str(tmp_path / "train.jsonl")
    assert from_memory.lines == from_file.lines == [1, 2, 3]
    assert from_memory.texts == from_file.texts
    assert memory_specs == file_specs
    for name in from_memory.targets:
        np.testing.assert_array_equal(from_memory.targets[name].values, from_file.targets[name].values)
        np.testing.assert_array_equal(from_memory.targets[name].mask, from_file.targets[name].mask)


def test_records_in_memory_errors_name_records_and_row() -> None:
    with pytest.raises(DataError, match=where("<records>", 2, "text") + "text is empty"):
        load([GOOD, {**GOOD, "text": ""}])


def test_parquet_round_trip(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "text": ["first", "second", "third"],
            "topics": [["code", "cook"], [], None],
            "level": ["senior", "junior", None],
            "score": [0.5, None, 3.0],
        }
    )
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    data, specs = load(
        path,
        [HeadSpec(name="topics", kind="multilabel"), HeadSpec(name="level", kind="multiclass"), score_head()],
        allow_new_labels=True,
    )
    assert data.texts == ["first", "second", "third"]
    assert data.lines == [1, 2, 3]
    assert specs[0].labels == ["code", "cook"]
    np.testing.assert_array_equal(data.targets["topics"].values, [[1, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(data.targets["topics"].mask, [True, True, False])
    np.testing.assert_array_equal(data.targets["level"].values, [1, 0, -100])
    np.testing.assert_array_equal(data.targets["score"].values, [0.5, np.nan, 3.0])

    # A Parquet row's 1-based position is its line; a missing column lists the schema's columns.
    pq.write_table(pa.table({"text": ["ok", ""], "level": ["mid", "mid"]}), path)
    with pytest.raises(DataError, match=where(path, 2, "text") + "text is empty"):
        load(path, [level_head()])
    with pytest.raises(
        DataError, match=re.escape("column 'score' not found; the file has columns ['level', 'text']")
    ):
        load(path, [score_head()])


def test_subset_keeps_rows_aligned() -> None:
    records = [
        {"text": "r0", "topics": ["code"], "level": "junior", "score": 0.0},
        {"text": "r1", "topics": ["cook"], "level": None, "score": 1.0},
        {"text": "r2", "topics": None, "level": "senior", "score": None},
        {"text": "r3", "topics": ["health"], "level": "mid", "score": 3.0},
    ]
    data, _ = load(records)
    part = data.subset([2, 0, 3])
    assert len(part) == 3
    assert part.texts == ["r2", "r0", "r3"]
    assert part.lines == [3, 1, 4]
    assert part.source == "<records>"
    np.testing.assert_array_equal(part.targets["topics"].values, [[0, 0, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(part.targets["topics"].mask, [False, True, True])
    np.testing.assert_array_equal(part.targets["level"].values, [2, 0, 1])
    np.testing.assert_array_equal(part.targets["score"].values, [np.nan, 0.0, 3.0])
    np.testing.assert_array_equal(part.targets["score"].mask, [False, True, True])
    assert data.subset(np.array([], dtype=int)).texts == []
    # Without line numbers the subset has none either.
    bare = LabelledData(texts=data.texts, targets=data.targets)
    assert bare.subset([1]).lines == []


# ----------------------------------------------------------------------------- regressions


def test_one_bad_cell_is_one_problem(tmp_path: Path) -> None:
    # A bad cell in the row's only head is not also reported as "no label for any head".
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "score": "abc"}, {"text": "b", "score": 1}])
    with pytest.raises(DataError, match=where(path, 1, "score") + "expected a number; got 'abc'$"):
        load(path, [score_head()])


def test_class_weights_that_do_not_fit_discovered_labels_is_a_data_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "level": "x"}, {"text": "b", "level": "y"}])
    head = HeadSpec(name="level", kind="multiclass", class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(
        DataError,
        match=where(path)
        + "head 'level' with the labels found in column 'level': class_weights has 3 values for 2 labels",
    ):
        load(path, [head], allow_new_labels=True)


# ----------------------------------------------------------------------------- encodings


def _table_bytes(delimiter: str, rows: list[list[str]]) -> bytes:
    return "".join(delimiter.join(row) + "\n" for row in rows).encode("utf-8")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_file_that_is_not_utf8_names_file_and_line(tmp_path: Path, suffix: str) -> None:
    latin = "café".encode("latin-1")  # b"caf\xe9": not UTF-8
    if suffix == ".jsonl":
        content = (json.dumps(GOOD) + "\n").encode() * 2 + b'{"text": "' + latin + b'", "level": "mid"}\n'
        line = 3
    else:
        delimiter = "," if suffix == ".csv" else "\t"
        content = _table_bytes(delimiter, [["text", "level"], ["fine", "mid"]]) + latin + f"{delimiter}mid\n".encode()
        line = 3
    path = tmp_path / f"train{suffix}"
    path.write_bytes(content)
    message = where(path, line) + r"byte 0xe9 at character \d+ is not UTF-8; save the file as UTF-8"
    with pytest.raises(DataError, match=message):
        load(path, [level_head()])
    with pytest.raises(DataError, match=message):
        load_texts(path, ["text"])
    with pytest.raises(DataError, match=message):
        list(iter_text_chunks(path, ["text"]))


def test_not_utf8_past_the_first_block_still_names_its_line(tmp_path: Path) -> None:
    # Text files decode in blocks of several KB: the line must still be the bad byte's.
    rows = [[f"row number {i}", "mid"] for i in range(2000)]
    path = tmp_path / "train.csv"
    path.write_bytes(_table_bytes(",", [["text", "level"], *rows]) + b"caf\xe9,mid\r\n" + b"ok,mid\n")
    with pytest.raises(DataError, match=where(path, 2002) + "byte 0xe9"):
        load(path, [level_head()])


def test_utf16_file_is_named_as_utf16(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_bytes("text\tlevel\nfine\tmid\n".encode("utf-16"))  # with its byte-order mark
    with pytest.raises(DataError, match=where(path, 1) + "the file is UTF-16"):
        load(path, [level_head()])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_byte_order_mark_is_not_part_of_the_first_column_or_record(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"train{suffix}"
    if suffix == ".jsonl":
        body = json.dumps({"text": "first", "level": "mid"}) + "\n" + json.dumps({"text": "second", "level": "junior"}) + "\n"
    else:
        delimiter = "," if suffix == ".csv" else "\t"
        body = f"text{delimiter}level\nfirst{delimiter}mid\nsecond{delimiter}junior\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    data, _ = load(path, [level_head()])
    assert data.texts == ["first", "second"]
    assert data.lines == ([1, 2] if suffix == ".jsonl" else [2, 3])
    assert load_texts(path, ["text"]) == ["first", "second"]


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("1e39", "'1e39'"), ("-3.5e38", "'-3.5e38'"), (1e39, r"1e\+39"), (10**400, r"10000000000000000000\.\.\.00000000 \(401 characters\)")],
    ids=["csv-text", "negative", "json-float", "json-huge-int"],
)
def test_regression_value_beyond_float32_names_file_line_and_column(tmp_path: Path, cell: Any, shown: str) -> None:
    if isinstance(cell, str):
        path = write_table(tmp_path / "train.csv", ["text", "score"], [["a", "1.5"], ["b", cell]])
        line = 3
    else:
        path = tmp_path / "train.jsonl"
        path.write_text(f'{{"text": "a", "score": 1.5}}\n{{"text": "b", "score": {cell!r}}}\n', encoding="utf-8")
        line = 2
    message = where(path, line, "score") + shown + " is too large: regression targets are float32, at most 3.403e\\+38"
    with pytest.raises(DataError, match=message):
        load(path, [score_head()])


def test_regression_value_at_the_float32_limit_is_kept(tmp_path: Path) -> None:
    data, _ = load([{"text": "a", "score": 3.4e38}, {"text": "b", "score": -1}], [score_head()])
    assert np.isfinite(data.targets["score"].values).all()


def test_integer_of_more_digits_than_python_reads_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "score": 1}\n{"text": "b", "score": ' + "9" * 5000 + "}\n", encoding="utf-8")
    with pytest.raises(DataError, match=where(path, 2) + "not readable JSON: Exceeds the limit"):
        load(path, [score_head()])


def test_float_cells_name_classes_as_the_config_does(tmp_path: Path) -> None:
    # pandas writes an integer column with gaps as floats: 4.0, NaN.
    records = [{"text": "a", "stars": 4.0}, {"text": "b", "stars": 2.5}, {"text": "c", "stars": float("nan"), "tags": [1.0]}]
    heads = [HeadSpec(name="stars", kind="multiclass"), HeadSpec(name="tags", kind="multilabel")]
    data, specs = load(records, heads, allow_new_labels=True)
    assert specs[0].labels == ["2.5", "4.0"]
    assert specs[1].labels == ["1.0"]
    assert data.targets["stars"].mask.tolist() == [True, True, False]
    config_labels = HeadSpec(name="stars", kind="multiclass", labels=[2.5, 4.0]).labels
    assert load(records[:2], [HeadSpec(name="stars", kind="multiclass", labels=config_labels)])[1][0].labels == config_labels


# ----------------------------------------------------------------------------- heads without labels


@pytest.mark.parametrize(
    "head",
    [score_head(), level_head(), topics_head(), HeadSpec(name="level", kind="multiclass")],
    ids=["regression", "multiclass", "multilabel", "multiclass-discovered"],
)
def test_head_with_no_labelled_row_in_training_data_names_head_and_column(tmp_path: Path, head: HeadSpec) -> None:
    rows = [{"text": f"row {i}", "other": 1.0, head.source_column: None if i % 2 else ""} for i in range(6)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    message = where(path, column=head.source_column) + (
        f"head {head.name!r} has no labelled row to train on: the column is missing or empty in all 6 training rows"
    )
    with pytest.raises(DataError, match=message):
        load(path, [head, score_head(name="other")], allow_new_labels=True)


def test_head_with_no_labelled_row_is_fine_in_evaluation_data() -> None:
    data, _ = load([{"text": "a", "level": "mid", "score": None}], [level_head(), score_head()], split="test")
    assert not data.targets["score"].mask.any()


def test_head_with_unreadable_cells_reports_the_cells_not_a_missing_head(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "score": "abc"}, {"text": "b", "score": None}])
    with pytest.raises(DataError, match=where(path, 1, "score") + "expected a number; got 'abc'"):
        load(path, [score_head()])


def test_holding_out_a_heads_last_rows_is_named() -> None:
    data, specs = load([{"text": "a", "level": "mid", "score": 2.0}, {"text": "b", "level": "junior"}], [level_head(), score_head()])
    require_labelled_rows(data, specs)
    with pytest.raises(DataError, match="column 'score': head 'score' has no labelled row to train on: the column is missing or empty in all 1 training rows left after holding out validation rows"):
        require_labelled_rows(data.subset([1]), specs, after_split=True)


# ----------------------------------------------------------------------------- empty files


def test_empty_jsonl_has_no_texts_to_predict(tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text("\n", encoding="utf-8")
    assert load_texts(path, ["text"]) == []
    with pytest.raises(DataError, match=where(path) + "the file has no data rows"):
        load(path)


# ----------------------------------------------------------------------------- files a new user writes


def test_repeated_header_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,level,level\na,mid,junior\n", encoding="utf-8")
    with pytest.raises(DataError, match=where(path, 1) + re.escape("the header names column(s) ['level'] more than once")):
        load(path, [level_head()])


def test_csv_cell_over_the_csv_field_limit_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,level\na,mid\n" + "x" * 200_000 + ",mid\n", encoding="utf-8")
    with pytest.raises(DataError, match=where(path, 3) + r"not readable as CSV \(field larger than field limit .*needs a JSONL or Parquet file"):
        load(path, [level_head()])


def test_json_array_file_is_told_apart_from_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps([GOOD, GOOD], indent=1), encoding="utf-8")
    with pytest.raises(DataError, match=where(path, 1) + r"not valid JSON .*expected one JSON object per line \(JSON Lines\), not a JSON array"):
        load(path)


def test_file_that_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    path.write_text("text,level\n", encoding="utf-8")
    with pytest.raises(DataError, match=where(path) + "not a readable Parquet file"):
        load(path, [level_head()])
    with pytest.raises(DataError, match=where(path) + "not a readable Parquet file"):
        list(iter_text_chunks(path, ["text"]))


def test_decimal_comma_gets_a_hint() -> None:
    with pytest.raises(DataError, match=re.escape("column 'score': expected a number; got '3,5' (write decimals with a point: 3.5)")):
        load([{"text": "a", "score": "3,5"}], [score_head()])


def test_semicolon_separated_csv_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text;level\na;mid\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"the file has columns \['text;level'\].*the file seems split by ';'; textheads reads ',' in \.csv and tabs in \.tsv"):
        load(path, [level_head()])
