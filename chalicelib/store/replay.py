"""One-time webhook tokens (Mailgun's): claimed once, by one conditional write, before anything is stored.

A token's item binds it to the claiming request's body fingerprint; the table's TTL drops it when its signature
could no longer verify anyway. One write per token: it is never written again.

Why a claim of its own, and not a put in the message's transaction: one request wins the claim before any of
the storing starts, so the losers of a race store nothing and cost one write each, and the storing code knows
nothing of tokens. A different request under a claimed token is refused at once. The very same request again
(same token, same fingerprint) is told apart from a first claim (``AGAIN``): it is the provider's retry of an
attempt that died midway, or a replay. Either way the delivery's own dedupe decides (``inbox.deliver``): what
the first attempt did not store is stored, and a request whose every message was stored already is refused as
used. Items an earlier version marked ``used`` are refused for every request, as before.
"""

from __future__ import annotations

from chalicelib.channels.base import OneTimeToken
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import to_item, to_values

CLAIMED = "claimed"
USED = "used"  # written by earlier versions once a delivery was stored; refused for every request


def _pk(namespace: str, token: str) -> str:
    return f"REPLAY#{namespace}#{token}"


FRESH = "fresh"  # the first claim of the token
AGAIN = "again"  # the very same request claimed it before


def claim(token: OneTimeToken) -> str | None:
    """Claim ``token`` for this request: ``FRESH``, ``AGAIN`` (this very request claimed it before), or None when
    another request claimed it (or an earlier version marked it used)."""
    client = aws.client("dynamodb")
    try:
        answer = client.put_item(
            TableName=get_settings().data_table,
            Item=to_item(
                {
                    "pk": _pk(token.namespace, token.token),
                    "sk": "REPLAY",
                    "state": CLAIMED,
                    "fingerprint": token.fingerprint,
                    "expires_at": token.expires_epoch,
                }
            ),
            # A fresh token, or this very request's own claim from an earlier attempt.
            ConditionExpression="attribute_not_exists(pk) OR (#state = :claimed AND fingerprint = :fingerprint)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_values({":claimed": CLAIMED, ":fingerprint": token.fingerprint}),
            ReturnValues="ALL_OLD",  # free: a put is billed by the larger of the old and new item either way
        )
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return AGAIN if answer.get("Attributes") else FRESH
