"""The report's account of a missed cost target: what the other services leave DynamoDB."""

from __future__ import annotations

from bench import report


def test_a_missed_target_says_what_it_leaves_dynamodb_in_write_units() -> None:
    now = {"dynamodb": 0.012, "api_gateway": 0.006, "lambda": 0.004, "sqs": 0.001, "xray": 0.0, "total": 0.023}
    text = report.target_leaves(now, 0.015)
    # 0.015 - 0.011 = $0.004 per 1,000 inbound = $0.000016 per conversation = 25.6 write units at $0.625 a million.
    assert "| left for DynamoDB | $0.004000 | 27%: 26 write units per conversation |" in text
    assert "| all but DynamoDB | $0.0110 | 73% |" in text
    assert "xray" not in text, "a service that costs nothing is not listed"


def test_other_services_alone_over_the_target_leave_nothing() -> None:
    now = {"dynamodb": 0.01, "api_gateway": 0.01, "lambda": 0.01, "total": 0.03}
    assert "the other services alone exceed the target" in report.target_leaves(now, 0.015)
