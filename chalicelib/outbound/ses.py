"""E-mail through Amazon SES (API v2 ``SendEmail`` with raw MIME).

The message is built with the standard library: ``From`` (``EMAIL_FROM_ADDRESS``, else the address
the customer wrote to), ``To``, ``Subject`` (``Re: ...`` of the thread, or the first line of a new
one), ``In-Reply-To`` and ``References`` so the customer's mail client threads it, and our
``Message-ID`` ``<out_...@<sender's domain>>``.

SES replaces a ``Message-ID`` it is given with its own, ``<SES MessageId@email.amazonses.com>``
(``@<region>.amazonses.com`` outside us-east-1) (Amazon SES developer guide, "Amazon SES header
fields"), so the customer's reply names that one: ``thread_ids`` holds it alone (one ``EMAILTHREAD``
item per e-mail sent). Our own ``Message-ID`` never reaches the customer; a reply that lists the
thread in ``References`` also finds the conversation through the customer's own earlier e-mails.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from botocore.exceptions import ClientError

from chalicelib.channels import auto_reply
from chalicelib.outbound.destinations import Destination, subject_from_text
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable, SendResult
from chalicelib.settings import get_settings
from chalicelib.store import aws

PROVIDER = "ses"
# SES errors that no retry can fix for this message. Everything else (throttling, a paused or
# suspended account, an unverified MAIL FROM domain) waits for SES or for ops.
FINAL_ERRORS = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})


def build(destination: Destination, text: str, message_id: str) -> EmailMessage:
    """The MIME message (``ValueError`` for a header that cannot be written, e.g. a broken address)."""
    if not destination.sender:
        raise ValueError("no From address")
    message = EmailMessage()
    message["From"] = destination.sender
    message["To"] = destination.to
    message["Subject"] = destination.subject or subject_from_text(text) or "(no subject)"
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = own_message_id(destination.sender, message_id)
    if destination.in_reply_to:
        message["In-Reply-To"] = destination.in_reply_to
        message["References"] = " ".join(destination.references or (destination.in_reply_to,))
    if destination.automatic:  # so that an out-of-office reply does not answer it (RFC 3834)
        for name, value in auto_reply.OUR_MARKS:
            message[name] = value
    message.set_content(text)
    return message


def own_message_id(sender: str, message_id: str) -> str:
    """Our Message-ID: the outbound message's id at the sender's domain, the same on every attempt."""
    return f"<{message_id}@{sender.rpartition('@')[2] or 'switchboard.invalid'}>"


def send(destination: Destination, text: str, message_id: str) -> SendResult:
    """Hand the e-mail to SES; the SES MessageId is the provider message id."""
    try:
        raw = build(destination, text, message_id).as_bytes(policy=SMTP)
    except (ValueError, TypeError) as exc:
        raise ProviderRejected(PROVIDER, f"cannot write the e-mail: {exc}") from None
    client = aws.client("sesv2")
    try:
        response = client.send_email(
            FromEmailAddress=destination.sender,
            Destination={"ToAddresses": [destination.to]},
            Content={"Raw": {"Data": raw}},
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, text_of_error = str(error.get("Code", "")), str(error.get("Message", ""))
        failure = f"{code}: {text_of_error}" if text_of_error else code
        if code in FINAL_ERRORS:
            raise ProviderRejected(PROVIDER, failure) from None
        raise ProviderUnavailable(PROVIDER, failure) from None
    ses_id = str(response["MessageId"])
    ours = own_message_id(str(destination.sender), message_id)
    return SendResult(PROVIDER, ses_id, email_message_id=ours, thread_ids=(ses_message_id(ses_id),))


def ses_message_id(ses_id: str) -> str:
    """The ``Message-ID`` SES gives the e-mail it sends as ``ses_id``, in this stage's region."""
    region = get_settings().region
    domain = "email.amazonses.com" if region == "us-east-1" else f"{region}.amazonses.com"
    return f"<{ses_id}@{domain}>"
