"""Knowledge-base articles: Markdown with front matter, checked with the file, line and field of each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib import kb
from chalicelib.cli import main

GOOD = """---
title: Opening hours
language: en
tags: [shop]
channels: [webchat, sms]
questions:
  - When are you open?
short_answer: Mon-Fri 10-19.
---
Our shop is open **Monday to Friday**, 10:00-19:00.
"""


def _base(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_an_article_is_its_front_matter_and_its_markdown(tmp_path):
    base = kb.load_base(_base(tmp_path, {"en/opening-hours.md": GOOD}))
    (article,) = base.articles
    assert article.article_id == "opening-hours"
    assert (article.title, article.language, article.tags, article.channels) == (
        "Opening hours",
        "en",
        ("shop",),
        ("webchat", "sms"),
    )
    assert article.questions == ("When are you open?",)
    assert article.short_answer == "Mon-Fri 10-19."
    assert article.body == "Our shop is open **Monday to Friday**, 10:00-19:00.\n"


def test_a_wrong_field_names_file_line_and_field(tmp_path):
    bad = GOOD.replace("language: en", "language: klingon")
    with pytest.raises(kb.ConfigError) as raised:
        kb.load_base(_base(tmp_path, {"en/opening-hours.md": bad}))
    (problem,) = raised.value.problems
    assert (problem.line, problem.field) == (3, "language")
    assert str(raised.value).startswith(f"{tmp_path / 'en/opening-hours.md'}:3: language: ")


def test_a_missing_title_and_an_unknown_channel_are_both_named(tmp_path):
    bad = GOOD.replace("title: Opening hours\n", "").replace("[webchat, sms]", "[webchat, pigeon]")
    with pytest.raises(kb.ConfigError) as raised:
        kb.load_base(_base(tmp_path, {"a.md": bad}))
    fields = {(p.field, p.line) for p in raised.value.problems}
    assert ("title", 2) in fields  # the front matter's first line
    assert ("channels[1]", 4) in fields


def test_no_front_matter_and_an_empty_body_are_rejected(tmp_path):
    with pytest.raises(kb.ConfigError) as raised:
        kb.load_base(_base(tmp_path, {"a.md": "Just text\n"}))
    assert raised.value.problems[0].line == 1
    assert "front matter" in raised.value.problems[0].message
    with pytest.raises(kb.ConfigError) as raised:
        kb.load_base(_base(tmp_path / "b", {"b.md": GOOD.split("---\nOur")[0] + "---\n"}))
    assert "body" in str(raised.value)


def test_two_articles_with_one_id_are_rejected(tmp_path):
    with pytest.raises(kb.ConfigError) as raised:
        kb.load_base(_base(tmp_path, {"en/x.md": GOOD, "de/x.md": GOOD.replace("language: en", "language: de")}))
    assert "x" in str(raised.value) and "already" in str(raised.value)


def test_the_sample_base_is_valid_in_english_and_german():
    base = kb.load_base(kb.DEFAULT_DIR)
    languages = {a.language for a in base.articles}
    assert languages == {"en", "de"}
    assert len(base.articles) >= 24
    assert 0 < base.min_coverage <= 1


def test_cli_kb_check_accepts_the_sample_and_names_a_bad_article(tmp_path, capsys):
    assert main(["kb", "check", str(kb.DEFAULT_DIR)]) == 0
    assert "OK" in capsys.readouterr().out
    _base(tmp_path, {"en/bad.md": GOOD.replace("language: en", "language: 7")})
    assert main(["kb", "check", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'en/bad.md'}:3: language: ")


def test_cli_kb_search_prints_ranked_articles_with_scores(capsys):
    assert main(["kb", "search", "Wann habt ihr sonntags geöffnet?", "--language", "de"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[1] == "oeffnungszeiten"
    assert float(lines[0].split()[0]) > 0


def test_a_bad_threshold_in_kb_yaml_names_the_file_line_and_field(tmp_path):
    _base(tmp_path, {"en/opening-hours.md": GOOD, "kb.yaml": "# settings\nmin_coverage: 2\n"})
    with pytest.raises(kb.ConfigError) as raised:
        kb.load_base(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'kb.yaml'}:2: min_coverage: ")
