"""The agent leg of an accepted voice contact: claimed once, by one conditional write, before any TwiML joins it.

Keys in the data table::

    AGENTLEG#<contact id>   OFFER#<offer id>   agent_id, call_sid, mode (softphone | phone), claimed_at, expires_at

One item per acceptance (an offer id names one): of every leg that tries to join the contact's conference for
that acceptance, the first to claim wins; the same call claiming again (Twilio asking its URL once more) is the
winner again, any other call is not. A contact accepted again later (a dropped agent, a transfer) has a new offer
id, so a new leg may join. The table's TTL drops the claim a day after it was made.
"""

from __future__ import annotations

import time

from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import to_item, to_values

RETENTION_SECONDS = 24 * 3600


def claim(contact_id: str, offer_id: str, agent_id: str, call_sid: str, mode: str, now: str) -> bool:
    """Claim the contact's agent leg for this acceptance and call; False when another call holds it."""
    client = aws.client("dynamodb")
    try:
        client.put_item(
            TableName=get_settings().data_table,
            Item=to_item(
                {
                    "pk": f"AGENTLEG#{contact_id}",
                    "sk": f"OFFER#{offer_id}",
                    "agent_id": agent_id,
                    "call_sid": call_sid,
                    "mode": mode,
                    "claimed_at": now,
                    "expires_at": int(time.time()) + RETENTION_SECONDS,
                }
            ),
            ConditionExpression="attribute_not_exists(pk) OR call_sid = :call_sid",
            ExpressionAttributeValues=to_values({":call_sid": call_sid}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True
