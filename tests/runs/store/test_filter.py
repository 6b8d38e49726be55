"""The filter language: parsing, errors that point at the bad token, vectorised evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainrun.exceptions import FilterError
from trainrun.runs.store._filter import MAX_DEPTH, MAX_FILTER_LENGTH, parse_filter, tokenize


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "status": ["completed", "failed", "completed", "killed"],
            "start": pd.to_datetime(
                ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"], utc=True
            ),
            "eval_accuracy": [0.9, 0.5, np.nan, 0.85],
            "flag_dropout": [0.1, 0.4, 0.2, 0.25],
            "flag_activation": ["relu", "tanh", None, 3],  # mixed types, one missing
            "flag_batch_norm": [True, False, True, False],
        }
    )


def ids(df: pd.DataFrame, expr: str) -> list[str]:
    return df["id"][parse_filter(expr).apply(df).to_numpy()].tolist()


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("eval_accuracy > 0.8", ["a", "d"]),
        ("0.8 < eval_accuracy", ["a", "d"]),
        ("eval_accuracy > 0.8 and flag_dropout < 0.2", ["a"]),
        ("eval_accuracy >= 0.85 or status == 'failed'", ["a", "b", "d"]),
        ('status == "failed"', ["b"]),
        ("status != 'completed'", ["b", "d"]),
        ("not status == 'completed'", ["b", "d"]),
        ("not (eval_accuracy > 0.8 or flag_dropout > 0.3)", ["c"]),
        ("eval_accuracy == null", ["c"]),
        ("eval_accuracy != null", ["a", "b", "d"]),
        ("flag_activation in ['relu', 'tanh']", ["a", "b"]),
        ("flag_activation not in ['relu']", ["b", "d"]),
        ("flag_activation in [3, null]", ["c", "d"]),
        ("flag_batch_norm", ["a", "c"]),
        ("flag_batch_norm == false", ["b", "d"]),
        ("start >= '2026-03-01'", ["c", "d"]),
        ('start < "2026-02-15T00:00:00Z"', ["a", "b"]),
        ("flag_dropout == 1e-1", ["a"]),
        ("flag_dropout > -1 AND status == 'killed'", ["d"]),
        ("flag_activation > 'a'", ["a", "b"]),  # the number 3 does not order with text: false
    ],
)
def test_filters_select_the_expected_runs(df: pd.DataFrame, expr: str, expected: list[str]) -> None:
    assert ids(df, expr) == expected


def test_missing_values_compare_false_even_with_not_equal(df: pd.DataFrame) -> None:
    # run c has no eval_accuracy: neither == nor != holds for it
    assert "c" not in ids(df, "eval_accuracy != 0.5")
    assert "c" not in ids(df, "eval_accuracy == 0.5")
    assert "c" in ids(df, "not eval_accuracy == 0.5")


def test_column_compared_with_column(df: pd.DataFrame) -> None:
    assert ids(df, "flag_dropout < eval_accuracy") == ["a", "b", "d"]


def test_or_binds_looser_than_and(df: pd.DataFrame) -> None:
    # a or (b and c), not (a or b) and c
    assert ids(df, "status == 'killed' or status == 'failed' and flag_dropout < 0.3") == ["d"]


def test_strings_keep_escaped_quotes() -> None:
    tokens = tokenize(r'flag_name == "say \"hi\""')
    assert tokens[2].value == 'say "hi"'


def test_parse_lists_the_columns_it_reads() -> None:
    f = parse_filter("eval_accuracy > 0.8 and (flag_dropout < 0.3 or eval_accuracy < 0.1)")
    assert f.columns == ["eval_accuracy", "flag_dropout"]


@pytest.mark.parametrize(
    ("expr", "message", "position"),
    [
        ("eval_accuracy > ", "Expected a column or a value, got the end", 16),
        ("eval_accuracy = 0.8", "Use '==' to compare", 14),
        ("eval_accuracy > 0.8 flag_dropout", "join conditions with 'and' or 'or'", 20),
        ("(eval_accuracy > 0.8", "Expected ')'", 20),
        ("status == 'failed", "Unterminated string", 10),
        ("eval_accuracy > 0.8 && status", "write 'and' instead", 20),
        ("", "The filter is empty", 0),
        ("flag_x in 3", "Expected '['", 10),
        ("0.5 > 0.3", "no column on either side", 4),
        ("eval_accuracy > null", "not true/false/null", 14),
        ("status == 'x' and", "got the end of the filter", 17),
        ("__import__('os').system('x')", "Unexpected character '.'", 16),
    ],
)
def test_syntax_errors_point_at_the_bad_token(expr: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(expr)
    text = str(info.value)
    assert message in text
    assert info.value.position == position
    # the caret line sits under the bad token
    expr_line, caret_line = text.splitlines()[-2:]
    assert expr_line == "  " + expr
    assert caret_line == "  " + " " * position + "^"


def test_unknown_column_names_the_nearest(df: pd.DataFrame) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter("eval_acuracy > 0.8").apply(df)
    assert "Unknown column 'eval_acuracy'" in str(info.value)
    assert "Did you mean: eval_accuracy" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_bad_date_is_an_error_at_the_literal(df: pd.DataFrame) -> None:
    with pytest.raises(FilterError, match="not a date or time") as info:
        parse_filter("start > 'yesterday-ish'").apply(df)
    assert info.value.position == 8


def test_filter_must_be_a_string() -> None:
    with pytest.raises(FilterError, match="Received: filter=3"):
        parse_filter(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("(", ")"), ("not (", ")"), ("not ", "")],
    ids=["parentheses", "not-parentheses", "not-chain"],
)
def test_a_filter_nested_far_past_the_limit_is_a_filter_error(opening: str, closing: str) -> None:
    depth = 1500  # RecursionError at about 200 levels before the bound
    expr = opening * depth + "eval_accuracy > 0.8" + closing * depth
    assert len(expr) <= MAX_FILTER_LENGTH  # the depth bound is what refuses it
    with pytest.raises(FilterError, match=f"more than {MAX_DEPTH} deep") as info:
        parse_filter(expr)
    # the caret sits under the '(' or 'not' that went one level too deep
    openers = [t for t in tokenize(expr) if t.text in ("(", "not")]
    assert info.value.position == openers[MAX_DEPTH].pos
    assert str(info.value).splitlines()[-1] == "  " + " " * openers[MAX_DEPTH].pos + "^"


def test_nesting_up_to_the_limit_parses_and_evaluates(df: pd.DataFrame) -> None:
    expr = "(" * MAX_DEPTH + "eval_accuracy > 0.8" + ")" * MAX_DEPTH
    assert list(df[parse_filter(expr).apply(df)].index) == list(
        df[parse_filter("eval_accuracy > 0.8").apply(df)].index
    )
    negated = "not " * MAX_DEPTH + "eval_accuracy > 0.8"  # an even count: the same runs
    assert parse_filter(negated).apply(df).tolist() == parse_filter(expr).apply(df).tolist()


def test_a_filter_longer_than_the_limit_is_refused_before_parsing() -> None:
    long = " or ".join(["eval_accuracy > 0.8"] * 1000)
    assert len(long) > MAX_FILTER_LENGTH
    with pytest.raises(FilterError, match=f"limit is {MAX_FILTER_LENGTH:,}"):
        parse_filter(long)


def test_a_long_flat_chain_within_the_limit_evaluates(df: pd.DataFrame) -> None:
    chain = " or ".join(["eval_accuracy > 0.8"] * 400)
    assert len(chain) < MAX_FILTER_LENGTH
    assert (
        parse_filter(chain).apply(df).tolist()
        == parse_filter("eval_accuracy > 0.8").apply(df).tolist()
    )
