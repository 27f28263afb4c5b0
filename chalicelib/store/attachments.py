"""Files visitors attach in the widget: uploaded by the browser straight to S3, read through presigned GETs.

A file is stored under ``widget/<site>/<visitor's hash>/<random>/<name>``: ``POST /widget/attachments`` hands the
widget a presigned POST for exactly that key, that content type and at most the configured size (S3 enforces
the policy's ``content-length-range``); the message that carries it names the key, which must be under that
visitor's own prefix and be uploaded (``uploaded``: S3's size and type, not what the browser claims). The
timeline keeps ``s3://<bucket>/<key>``; whoever reads it (the agent's conversation, the visitor's read) gets a
presigned GET valid for ``READ_SECONDS``. No AWS call is made to presign.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.settings import get_settings
from chalicelib.store import aws

PREFIX = "widget/"
UPLOAD_SECONDS = 300
READ_SECONDS = 900
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def visitor_prefix(site: str, visitor_id: str) -> str:
    digest = hashlib.sha256(f"{site}/{visitor_id}".encode()).hexdigest()[:32]
    return f"{PREFIX}{site}/{digest}/"


def new_key(site: str, visitor_id: str, filename: str) -> str:
    safe = _UNSAFE.sub("_", filename).strip("._")[:100] or "file"
    return f"{visitor_prefix(site, visitor_id)}{secrets.token_hex(12)}/{safe}"


def upload_form(key: str, content_type: str, max_bytes: int) -> dict[str, Any]:
    """A presigned POST (``url`` and form ``fields``) for one file: this key, this type, 1..max_bytes bytes."""
    form = aws.client("s3").generate_presigned_post(
        Bucket=get_settings().attachments_bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=UPLOAD_SECONDS,
    )
    return {"url": form["url"], "fields": form["fields"]}


def uploaded(key: str) -> tuple[int, str] | None:
    """(size, content type) of an uploaded file as S3 holds it; None when nothing is there."""
    try:
        head = aws.client("s3").head_object(Bucket=get_settings().attachments_bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return int(head["ContentLength"]), str(head.get("ContentType", "application/octet-stream"))


def url_of(key: str) -> str:
    return f"s3://{get_settings().attachments_bucket}/{key}"


def signed(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message with each of its widget attachments' ``s3://`` URLs as a presigned GET (others as they were)."""
    found = message.get("attachments")
    if not found:
        return dict(message)
    ours = f"s3://{get_settings().attachments_bucket}/{PREFIX}"
    shown = []
    for attachment in found:
        url = str(attachment.get("url") or "")
        if url.startswith(ours):
            key = url.removeprefix(f"s3://{get_settings().attachments_bucket}/")
            params = {"Bucket": get_settings().attachments_bucket, "Key": key}
            url = aws.client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=READ_SECONDS)
        shown.append({**attachment, "url": url})
    return {**message, "attachments": shown}
