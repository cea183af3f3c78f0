"""The one parser of customer JSON: every refusal is `MalformedJson` (fal's 422 list),
never RecursionError, UnicodeDecodeError or the integer-digit ValueError."""

from __future__ import annotations

import math

import pytest

from nxs.errors import BadRequest, MalformedJson
from nxs.jsoninput import MAX_DEPTH, parse_json, parse_object, parse_rest_object


def refusal(raw: bytes) -> list[dict[str, object]]:
    with pytest.raises(MalformedJson) as caught:
        parse_json(raw)
    assert caught.value.status == 422
    return list(caught.value.detail)


def test_nesting_up_to_the_limit_reads_and_one_more_is_refused() -> None:
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    deeper = MAX_DEPTH + 1
    assert refusal(b"[" * deeper + b"]" * deeper)[0]["msg"] == "JSON nested too deeply"


def test_the_reported_100k_deep_array_is_refused_as_too_deep() -> None:
    too_deep = [{"loc": ["body"], "msg": "JSON nested too deeply", "type": "value_error"}]
    assert refusal(b"[" * 100_000 + b"]" * 100_000) == too_deep


def test_invalid_utf8_and_overlong_integers_are_refused() -> None:
    assert refusal(b'{"x": "\xff"}')[0]["msg"] == "invalid UTF-8 in the body"
    assert refusal(b"9" * 5000)[0]["msg"] == "number too large to read"


def test_malformed_json_names_its_position() -> None:
    assert refusal(b'{"x": }')[0]["loc"] == ["body", 6]


def test_nan_infinity_huge_numbers_and_duplicate_keys_read_as_python_reads_them() -> None:
    value = parse_object(b'{"a": NaN, "b": 1e400, "c": 1' + b"0" * 400 + b', "d": 1, "d": 2}')
    assert math.isnan(value["a"]) and value["b"] == math.inf
    assert value["c"] == 10**400 and value["d"] == 2


def test_an_input_must_be_an_object() -> None:
    with pytest.raises(MalformedJson) as caught:
        parse_object(b"[]")
    assert caught.value.detail == [
        {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}
    ]


def test_rest_bodies_are_refused_with_400_as_fal_answers() -> None:
    with pytest.raises(BadRequest, match="Request body is not valid JSON"):
        parse_rest_object(b"[" * 5000)
    with pytest.raises(BadRequest, match="Request body must be a JSON object"):
        parse_rest_object(b"1")
