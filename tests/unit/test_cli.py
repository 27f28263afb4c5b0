"""``switchboard rules check`` and ``rules explain``, run through ``main(argv)`` as the console script does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.routing.config import DEFAULT_FILE

BROKEN = Path(__file__).parent.parent / "fixtures" / "routing"
DEPLOYED = str(DEFAULT_FILE)


def test_check_a_valid_file(capsys):
    assert main(["rules", "check", DEPLOYED]) == 0
    out, err = capsys.readouterr()
    assert out == f"{DEPLOYED}: OK (4 queues, 5 rules)\n"
    assert err == ""


def test_check_a_broken_file_names_the_field_and_line(capsys):
    path = str(BROKEN / "skill_level_7.yaml")
    assert main(["rules", "check", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}:11: rules[0].skills.billing: Input should be less than or equal to 5\n"


def test_check_names_a_bad_callback_setting(capsys, tmp_path):
    broken = tmp_path / "routing.yaml"
    broken.write_text(Path(DEPLOYED).read_text().replace("    attempts: 3\n", "    attempts: many\n"))
    assert main(["rules", "check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{broken}:") and "voice.callback.attempts: Input should be a valid integer" in err


def test_check_a_missing_file(capsys, tmp_path):
    assert main(["rules", "check", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_explain_a_billing_email(capsys):
    message = json.dumps({"channel": "email", "subject": "Invoice 114", "text": "It is wrong."})
    assert main(["rules", "explain", DEPLOYED, "--message", message, "--at", "2026-06-10T10:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "2. billing questions: MATCH" in out
    assert "Rule:         billing questions" in out
    assert "Queue:        billing, open now" in out
    assert "Skills:       billing >= 3" in out
    assert "Priority:     0" in out
    assert "deadline 2026-06-10T11:00:00.000000Z" in out
    assert "after 20m, at 2026-06-10T10:20:00.000000Z: drop billing; also wait in support" in out


def test_explain_a_vip_out_of_hours_with_a_customer_and_a_local_time(capsys):
    message = json.dumps({"channel": "webchat", "text": "hello"})
    customer = json.dumps({"tier": "vip", "tags": ["b2b"]})
    # 21:00 London time given with its offset.
    argv = [
        "rules",
        "explain",
        DEPLOYED,
        "--message",
        message,
        "--customer",
        customer,
        "--at",
        "2026-06-10T21:00+01:00",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Contact:      channel webchat, customer tier vip, tags b2b, text of 5 characters" in out
    assert "At:           2026-06-10T20:00:00.000000Z" in out
    assert "Queue:        support, closed now; opens Thu 2026-06-11 08:00 BST" in out
    assert "(queue vip is closed (Wed 21:00 Europe/London); out of hours it overflows to support)" in out
    assert "Out of hours: reply" in out
    assert "Priority:     7" in out
    # The shipped support queue counts its SLA in business hours: 60 s from Thursday's 08:00 BST opening.
    assert "deadline 2026-06-11T07:01:00.000000Z" in out
    assert "SLA clock:    business hours of queue support" in out


def test_explain_reads_the_message_from_a_file(capsys, tmp_path):
    path = tmp_path / "message.json"
    path.write_text(json.dumps({"channel": "voice"}))
    assert main(["rules", "explain", DEPLOYED, "--message", f"@{path}", "--at", "2026-06-10T10:00:00"]) == 0
    assert "Rule:         phone calls" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--message", "{not json"], "--message: not valid JSON"),
        (["--message", '["email"]'], "--message: must be a JSON object"),
        (["--message", '{"channel": "fax"}'], "--message: channel must be one of"),
        (["--message", '{"channel": "sms", "txt": "hi"}'], "--message: unknown key 'txt'"),
        (["--message", '{"channel": "sms"}', "--customer", '{"tags": "vip"}'], "--customer: tags must be a list"),
        (["--message", '{"channel": "sms"}', "--at", "yesterday"], "--at: not an ISO-8601 date and time"),
    ],
)
def test_explain_refuses_bad_arguments_with_status_2(capsys, options, complaint):
    assert main(["rules", "explain", DEPLOYED, *options]) == 2
    assert complaint in capsys.readouterr().err


def test_explain_with_a_broken_file_is_status_1(capsys):
    path = str(BROKEN / "bad_regex.yaml")
    assert main(["rules", "explain", path, "--message", '{"channel": "sms"}']) == 1
    assert "rules[0].when.text_matches: invalid regular expression" in capsys.readouterr().err


def test_usage_errors_and_help(capsys):
    assert main(["rules"]) == 2
    assert main(["rules", "explain", DEPLOYED]) == 2  # --message is required
    assert main(["--help"]) == 0
    assert "rules" in capsys.readouterr().out
