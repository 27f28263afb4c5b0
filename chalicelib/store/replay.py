"""One-time webhook tokens (Mailgun's): claimed once, by one conditional write, before anything is stored.

A token's item moves from ``claimed`` (bound to the claiming request's body fingerprint) to ``used`` once the
delivery is stored; the table's TTL drops it when its signature could no longer verify anyway.

Why a claim of its own, and not a put in the message's transaction: one request wins the claim before any of
the storing starts, so the losers of a race store nothing and cost one write each, and the storing code knows
nothing of tokens. What that costs is the crash in between (claimed, not yet stored): the claim stays
``claimed`` and admits the same request again (same token, same body fingerprint), so the provider's retry of
that very request completes it (and the message write deduplicates if the first attempt got further). A
different request under the token, or any request once it is ``used``, is refused.
"""

from __future__ import annotations

from chalicelib.channels.base import OneTimeToken
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import key, to_item, to_values

CLAIMED = "claimed"
USED = "used"


def _pk(namespace: str, token: str) -> str:
    return f"REPLAY#{namespace}#{token}"


def claim(token: OneTimeToken) -> bool:
    """Claim ``token`` for this request; False when it is used, or claimed by another request."""
    client = aws.client("dynamodb")
    try:
        client.put_item(
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
            # A fresh token, or this very request's own claim from an attempt that died before storing.
            ConditionExpression="attribute_not_exists(pk) OR (#state = :claimed AND fingerprint = :fingerprint)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_values({":claimed": CLAIMED, ":fingerprint": token.fingerprint}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def use_up(token: OneTimeToken) -> None:
    """Mark a claimed token used, once its delivery is stored: from now on every request under it is refused."""
    aws.client("dynamodb").update_item(
        TableName=get_settings().data_table,
        Key=key(_pk(token.namespace, token.token), "REPLAY"),
        UpdateExpression="SET #state = :used",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=to_values({":used": USED}),
    )
