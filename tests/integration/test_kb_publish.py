"""PUT /admin/kb: an admin publishes a new knowledge base without a deployment; checked first, nothing half-written."""

from __future__ import annotations

import json

import pytest

from chalicelib import kb
from chalicelib.kb import published
from tests.support import as_admin, as_agent

JSON = {"Content-Type": "application/json"}

RETURNS = """---
title: Returns for the winter sale
language: en
questions:
  - Can I return sale items?
---
Winter sale items can be returned within 14 days.
"""


@pytest.fixture(autouse=True)
def _fresh_cache():
    published.forget_current_index()
    yield
    published.forget_current_index()


def _publish(client, body: object, headers: dict[str, str] | None = None):
    return client.http.put("/admin/kb", headers=headers or {**as_admin(), **JSON}, body=json.dumps(body))


def test_a_published_base_replaces_the_deployed_one_for_every_search(client):
    assert kb.search("winter sale returns")[0].article_id != "winter-sale"

    response = _publish(client, {"files": {"en/winter-sale.md": RETURNS}, "settings": "min_coverage: 0.4\n"})

    assert response.status_code == 200, response.body
    assert response.json_body["articles"] == ["winter-sale"]
    assert response.json_body["languages"] == ["en"]
    published.forget_current_index()  # another container: reads the published base, not the deployed one
    (hit,) = kb.search("winter sale returns")
    assert hit.article_id == "winter-sale"
    assert kb.current_index().min_coverage == 0.4


def test_a_bad_article_is_422_naming_file_line_and_field_and_nothing_is_published(client):
    bad = RETURNS.replace("language: en", "language: fr")

    response = _publish(client, {"files": {"en/winter-sale.md": bad, "en/ok.md": RETURNS}})

    assert response.status_code == 422, response.body
    assert response.json_body["error"] == "invalid_payload"
    (problem,) = response.json_body["details"]
    assert (problem["file"], problem["line"], problem["field"]) == ("en/winter-sale.md", 3, "language")
    published.forget_current_index()
    assert kb.search("opening hours")[0].article_id == "opening-hours"  # still the deployed base


@pytest.mark.parametrize(
    "body",
    [[], {"files": []}, {"files": {}}, {"files": {"a.md": 7}}, {"files": {"a.txt": RETURNS}}, {"files": {}, "x": 1}],
)
def test_a_body_that_is_not_a_base_is_422(client, body):
    response = _publish(client, body)
    assert response.status_code == 422, response.body
    assert response.json_body["error"] == "invalid_payload"


def test_only_an_admin_publishes(client):
    response = _publish(client, {"files": {"en/winter-sale.md": RETURNS}}, headers={**as_agent("ada"), **JSON})
    assert response.status_code == 403


def test_a_container_sees_a_publish_within_a_minute_and_rebuilds_only_on_change(client):
    assert published.current_index(now=1000.0) is published.default_index()
    assert _publish(client, {"files": {"en/winter-sale.md": RETURNS}}).status_code == 200
    published.forget_current_index()
    first = published.current_index(now=2000.0)
    assert [a.article_id for a in first.base.articles] == ["winter-sale"]
    assert published.current_index(now=2059.0) is first  # within the minute: not even a read
    assert published.current_index(now=2061.0) is first  # read again, same digest: the same index

    published.publish({"en/other.md": RETURNS}, None)  # as another container's PUT /admin/kb does
    assert published.current_index(now=2100.0) is first
    assert [a.article_id for a in published.current_index(now=2122.0).base.articles] == ["other"]
