"""Files a visitor attaches in the widget: a presigned S3 POST for an allowed type and size, then the message
that names the uploaded key; the agent's conversation and the visitor's read link it through presigned GETs.

The limits are routing.yaml's ``widget.attachments``; a key is only ever a message's if it is under the sending
visitor's own prefix and uploaded; what S3 holds (size, type) is recorded, not what the browser claimed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from chalice.test import Client

from chalicelib.settings import get_settings
from chalicelib.store import aws
from tests.support import as_agent, connect_agent, create_agent, drain, offers_to, stored_messages

JSON = {"Content-Type": "application/json"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def _ask(client: Client, **fields: Any) -> Any:
    body = {
        "site": "acme",
        "visitor_id": "v_grace",
        "filename": "receipt.png",
        "content_type": "image/png",
        "size": 208,
    }
    return client.http.post("/widget/attachments", headers=JSON, body=json.dumps({**body, **fields}).encode())


def _upload(answer: Any, data: bytes = PNG, content_type: str = "image/png") -> requests.Response:
    form = answer.json_body["upload"]
    return requests.post(form["url"], data=form["fields"], files={"file": ("receipt.png", data, content_type)})


def _send(client: Client, attachment: dict[str, Any], visitor: str = "v_grace", text: str = "Here it is") -> Any:
    body = {"site": "acme", "visitor_id": visitor, "message_id": "m_1", "text": text, "attachment": attachment}
    return client.http.post("/widget/messages", headers=JSON, body=json.dumps(body).encode())


def test_a_visitor_uploads_a_file_and_the_message_carries_it_to_the_agent(client):
    answer = _ask(client)
    assert answer.status_code == 200, answer.body
    fields = answer.json_body["upload"]["fields"]
    key = answer.json_body["attachment"]["key"]
    assert fields["key"] == key and fields["Content-Type"] == "image/png"
    assert key.startswith("widget/acme/") and key.endswith("/receipt.png")
    assert "policy" in {k.lower() for k in fields}  # the size range and type are in the signed policy
    assert _upload(answer).status_code in (200, 204)

    sent = _send(client, {"key": key, "filename": "receipt.png"})
    assert sent.status_code == 200, sent.body
    (shown,) = sent.json_body["message"]["attachments"]
    assert shown["filename"] == "receipt.png" and shown["url"].startswith("https://")

    (stored,) = stored_messages()
    (attached,) = stored["attachments"]
    assert attached["url"] == f"s3://{get_settings().attachments_bucket}/{key}"
    assert (attached["content_type"], int(attached["size"])) == ("image/png", len(PNG))  # as S3 holds it

    create_agent(client, "ada", capacity=2)
    agent = connect_agent(client, "ada")
    drain(client)
    offer = offers_to(agent)[-1]
    accepted = client.http.post(
        f"/conversations/{offer['contact_id']}/accept",
        headers={**as_agent("ada"), **JSON},
        body=json.dumps({"offer_id": offer["offer_id"]}),
    )
    assert accepted.status_code == 200, accepted.body
    view = client.http.get(f"/conversations/{offer['contact_id']}", headers=as_agent("ada")).json_body
    (link,) = [a for m in view["timeline"] for a in (m.get("attachments") or [])]
    assert link["url"].startswith("https://") and key in link["url"] and "Signature" in link["url"]
    assert requests.get(link["url"]).content == PNG  # the presigned GET reads the file

    query = urlencode({"site": "acme", "visitor_id": "v_grace"})
    read = client.http.get(f"/widget/conversations/{offer['contact_id']}/messages?{query}").json_body
    (visitors_copy,) = [a for m in read["messages"] for a in (m.get("attachments") or [])]
    assert visitors_copy["filename"] == "receipt.png" and requests.get(visitors_copy["url"]).content == PNG


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"content_type": "application/x-msdownload", "filename": "setup.exe"}, "content_type"),
        ({"size": 11 * 1024 * 1024}, "size"),
        ({"size": 0}, "size"),
        ({"filename": ""}, "filename"),
        ({"visitor_id": "v grace"}, "visitor_id"),
        ({"bucket": "another"}, "bucket"),
    ],
)
def test_a_file_the_config_does_not_allow_gets_no_upload_form(client, fields, field):
    answer = _ask(client, **fields)
    assert answer.status_code == 422, answer.body
    assert field in [d["field"] for d in answer.json_body["details"]]
    assert "upload" not in answer.json_body


def test_a_message_cannot_carry_another_visitors_file_or_one_never_uploaded(client):
    answer = _ask(client)
    _upload(answer)
    key = answer.json_body["attachment"]["key"]

    theirs = _send(client, {"key": key, "filename": "receipt.png"}, visitor="v_mallory")
    assert theirs.status_code == 422
    assert theirs.json_body["details"] == [{"field": "attachment.key", "problem": "not yours"}]

    never = _ask(client).json_body["attachment"]["key"]  # a form asked for, nothing uploaded with it
    missing = _send(client, {"key": never})
    assert missing.status_code == 422
    assert missing.json_body["details"] == [{"field": "attachment.key", "problem": "nothing uploaded"}]
    for bad in ("widget/acme/../x", {"key": key, "url": "https://evil.example/x"}):
        refused = _send(client, bad if isinstance(bad, dict) else {"key": bad})
        assert refused.status_code == 422, bad
    assert stored_messages() == []


def test_the_bucket_is_private_and_takes_posts_from_any_site(client):
    s3 = aws.client("s3")
    rules = s3.get_bucket_cors(Bucket=get_settings().attachments_bucket)["CORSRules"]
    assert rules[0]["AllowedMethods"] == ["POST"] and rules[0]["AllowedOrigins"] == ["*"]
    answer = _ask(client)
    _upload(answer)
    plain = f"https://{get_settings().attachments_bucket}.s3.amazonaws.com/{answer.json_body['attachment']['key']}"
    assert requests.get(plain).status_code == 403
