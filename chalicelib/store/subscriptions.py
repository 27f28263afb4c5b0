"""The SNS subscriptions that bring us SES's inbound e-mail: confirming the ones SNS offers.

The topic lives in SES's receiving region, which need not be this deployment's: the call goes to the SNS
of the region named.
"""

from __future__ import annotations

from chalicelib.store import aws


def confirm(topic_arn: str, token: str, region: str) -> None:
    """Confirm a subscription through the SNS API, so unsubscribing needs AWS credentials, not just a link.

    An AWS error propagates: the webhook answers 500 and SNS delivers the confirmation again.
    """
    aws.client("sns", region).confirm_subscription(TopicArn=topic_arn, Token=token, AuthenticateOnUnsubscribe="true")
