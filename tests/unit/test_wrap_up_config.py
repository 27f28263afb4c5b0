"""``wrap_up_codes:`` in routing.yaml: the codes and labels the console offers; mistakes named with their line."""

from __future__ import annotations

import pytest

from chalicelib.routing.config import ConfigError, default_config, parse_config

BASE = "queues:\n  default: {}\nrules:\n  - name: all\n    queue: default\n"


def test_the_shipped_config_lists_wrap_up_codes_with_labels():
    codes = dict(default_config().wrap_up_codes)
    assert codes["resolved"] == "Resolved"
    assert {"follow_up", "spam", "answered"} <= set(codes)


def test_codes_keep_their_order_and_a_config_without_them_accepts_any():
    config = parse_config(BASE + "wrap_up_codes:\n  - {code: sold, label: Sold}\n  - {code: lost, label: Lost}\n")
    assert config.wrap_up_codes == (("sold", "Sold"), ("lost", "Lost"))
    assert parse_config(BASE).wrap_up_codes == ()


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ("  - {code: Sold Out, label: Sold}\n", "should match pattern"),
        ("  - {code: sold}\n", "label"),
        ("  - {code: sold, label: Sold, colour: red}\n", "unknown key"),
        ("  - {code: sold, label: Sold}\n  - {code: sold, label: Again}\n", "listed twice"),
    ],
)
def test_a_bad_wrap_up_code_is_a_config_error_naming_its_line(codes, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + "wrap_up_codes:\n" + codes)
    problems = [p for p in caught.value.problems if p.field.startswith("wrap_up_codes")]
    assert problems and any(message in p.message or message in p.field for p in problems), str(caught.value)
    assert all(p.line and p.line >= 6 for p in problems), str(caught.value)
