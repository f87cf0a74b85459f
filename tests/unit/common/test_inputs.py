"""The input gate (mallcare_common.inputs): JSON nested too deep is refused before the
parser recurses; strings, keys too, must be text the store can keep; numbers must be
finite and integers fit in 64 bits; times given as input stay within years the store
keeps. Refusals name the field by its path, as a schema's messages do. HTTP's read_json answers them 400 and
422; RPC and events: see
tests/integration/test_input_gate.py."""

import json
from datetime import timezone

import pytest
from marshmallow import ValidationError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from mallcare_common import inputs
from mallcare_common.inputs import MAX_DEPTH, InvalidInput, MalformedInput, check, loads
from mallcare_common.web import MalformedBody, read_json

INT64 = "Number out of range: integers go from -9223372036854775808 to 9223372036854775807."


def refused(value):
    with pytest.raises(InvalidInput) as error:
        check(value)
    return error.value.messages


def nested(levels):
    return "[" * levels + "]" * levels


def test_ordinary_bodies_pass_untouched():
    body = {
        "description": "草莓发霉了 🍓\n请退款\t谢谢\r\n",
        "anger_score": 5,
        "price": 39.9,
        "ok": True,
        "staff_involved": ["E1024"],
        "product": None,
        "mall_id": "sh-xujiahui",
    }
    assert check(loads(json.dumps(body))) == body
    assert loads(json.dumps(body, ensure_ascii=False).encode()) == body
    assert loads('"\\ud83c\\udf53"') == "🍓"  # a surrogate pair escaped is one character, and fine


def test_a_lone_surrogate_is_refused_in_values_and_in_keys_with_its_field():
    assert refused(loads('{"description": "x\\ud800"}')) == {
        "description": ["Not valid text: a lone surrogate (U+D800) at position 1."]
    }
    assert refused(loads('{"customer": {"name": "\\udfff"}}')) == {
        "customer": {"name": ["Not valid text: a lone surrogate (U+DFFF) at position 0."]}
    }
    assert refused(loads('{"staff_involved": ["E1", "E\\ud83d"]}')) == {
        "staff_involved": {1: ["Not valid text: a lone surrogate (U+D83D) at position 1."]}
    }
    # a key cannot be named as it came: the message names it with the character escaped
    messages = refused(loads('{"customer": {"na\\ud800me": "Li"}}'))
    assert messages == {
        "customer": {"na\\ud800me": ["Not a valid field name: a lone surrogate (U+D800) at position 2."]}
    }
    assert json.dumps(messages, ensure_ascii=False).encode("utf-8")  # the 422 answer can be written


def test_control_characters_other_than_tab_newline_and_return_are_refused():
    for char in ("\x00", "\x07", "\x0b", "\x1b", "\x7f", "\x85"):
        assert refused({"description": f"ab{char}"}) == {
            "description": [f"Not valid text: a control character (U+{ord(char):04X}) at position 2."]
        }
    assert refused({"a\x00b": 1}) == {
        "a\\u0000b": ["Not a valid field name: a control character (U+0000) at position 1."]
    }
    assert check({"description": "line\nnext\r\n\tindented"})


def test_integers_must_fit_in_signed_64_bits():
    assert check({"n": 2**63 - 1, "m": -(2**63)}) == {"n": 2**63 - 1, "m": -(2**63)}
    assert refused(loads('{"n": 9223372036854775808}')) == {"n": [INT64]}
    assert refused({"n": -(2**63) - 1}) == {"n": [INT64]}
    assert refused({"deep": {"list": [1, 10**30]}}) == {"deep": {"list": {1: [INT64]}}}


def test_nan_infinity_and_overflowing_floats_are_refused():
    for text in ('{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}', '{"x": 1e309}', '{"x": -1e400}'):
        assert refused(loads(text)) == {"x": ["Not a finite number."]}, text
    assert check(loads('{"x": 1e308, "y": -2.5e-300}')) == {"x": 1e308, "y": -2.5e-300}


def test_every_problem_is_reported_at_once_and_a_bare_value_under_schema():
    assert refused({"a": "\ud800", "b": float("nan"), "c": [2**64]}) == {
        "a": ["Not valid text: a lone surrogate (U+D800) at position 0."],
        "b": ["Not a finite number."],
        "c": {0: [INT64]},
    }
    assert refused("x\udc00") == {"_schema": ["Not valid text: a lone surrogate (U+DC00) at position 1."]}


def test_nesting_is_bounded_at_32_levels_before_parsing():
    assert MAX_DEPTH == 32
    assert loads(nested(32)) is not None
    with pytest.raises(MalformedInput, match="nested deeper than 32 levels"):
        loads(nested(33))
    with pytest.raises(MalformedInput, match="nested deeper than 32 levels"):
        loads('{"a":' * 33 + "1" + "}" * 33)
    # brackets inside strings are text, not nesting, escaped quotes included
    assert loads(json.dumps({"text": "[{" * 1000})) == {"text": "[{" * 1000}
    assert loads(json.dumps(['"[[[', ["]"]])) == ['"[[[', ["]"]]
    with pytest.raises(MalformedInput, match="nested deeper than 2 levels"):
        loads(json.dumps(['"]]]', [["x"]]]), max_depth=2)


def test_an_unclosed_string_is_read_once_not_again_from_each_quote_in_it():
    """A string of escaped quotes never closed ran the string pattern from each quote to the
    end: quadratic, seconds of the service's one core for a 64 KiB body. Its brackets after
    it are still counted, and the parser says what is wrong."""
    with pytest.raises(MalformedInput, match="not JSON: Unterminated string"):
        loads('"' + '\\"' * 32000)
    with pytest.raises(MalformedInput, match="nested deeper than 32 levels"):
        loads('["x\\"", ' + "[" * 40 + '"' + '\\"' * 1000)


def test_twenty_thousand_levels_are_refused_without_recursion():
    for text in (nested(20000), '{"a":' * 20000, "[" * 60000):  # the last is not even closed
        with pytest.raises(MalformedInput, match="nested deeper"):
            loads(text)


def test_a_value_decoded_elsewhere_is_bounded_by_check_too():
    value = []
    for _ in range(5000):  # what an RPC payload or event decoded by kombu may hold
        value = [value]
    with pytest.raises(MalformedInput, match="nested deeper than 32 levels"):
        check(value)
    shallow = []
    for _ in range(MAX_DEPTH - 1):
        shallow = [shallow]
    assert check(shallow) is shallow


def test_not_utf8_or_not_json_is_malformed_with_the_reason():
    with pytest.raises(MalformedInput, match="not UTF-8"):
        loads(b'{"a": "\xff"}')
    with pytest.raises(MalformedInput, match="not JSON"):
        loads(b'{"a": ')


def request(body):
    return Request(EnvironBuilder(method="POST", data=body, content_type="application/json").get_environ())


def test_read_json_answers_the_gate_as_400_or_422():
    assert read_json(request(b'{"a": "b"}')) == {"a": "b"}
    with pytest.raises(MalformedBody, match="nested deeper than 32 levels"):
        read_json(request(('{"a": ' + nested(20000) + "}").encode()))
    with pytest.raises(InvalidInput) as error:
        read_json(request(b'{"description": "x\\ud800", "n": 1e999}'))
    assert set(error.value.messages) == {"description", "n"}
    assert isinstance(error.value, ValidationError)  # so web answers it 422 VALIDATION_ERROR with fields


def test_times_given_as_input_stay_within_the_years_the_store_and_arithmetic_keep():
    field = inputs.AwareDateTime()
    assert field.deserialize("2026-12-05T10:00:00+08:00").year == 2026
    assert field.deserialize("1900-01-01T00:00:00+14:00").astimezone(timezone.utc).year == 1899
    for edge in (
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1899-12-31T23:59:59+00:00",
        "3000-01-01T00:00:00+00:00",
    ):
        with pytest.raises(ValidationError, match="Not a time mallcare keeps: years 1900 to 2999."):
            field.deserialize(edge)
    with pytest.raises(ValidationError, match="Not a valid aware datetime"):
        field.deserialize("2026-12-05T10:00:00")
