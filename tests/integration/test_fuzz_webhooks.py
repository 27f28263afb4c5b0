"""Every webhook endpoint: arbitrary bytes and headers never give a 5xx and never store or queue anything."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.registry import CHANNELS
from tests.support import data_items, queued_message_count

SIGNATURE_HEADERS = [
    "X-Switchboard-Signature",
    "X-Switchboard-Timestamp",
    "X-Twilio-Signature",
    "X-Hub-Signature-256",
    "X-Telegram-Bot-Api-Secret-Token",
]
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=80),
    st.from_regex(r"sha256=[0-9a-f]{64}", fullmatch=True),
    st.integers(min_value=0, max_value=2**40).map(str),
)


@pytest.mark.parametrize("adapter", CHANNELS, ids=lambda a: a.name)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=3000),
    headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), header_values, max_size=4),
    content_type_index=st.integers(min_value=0, max_value=5),
    method_index=st.integers(min_value=0, max_value=1),
)
def test_arbitrary_requests_never_fail_the_server_nor_store(
    client, adapter, body, headers, content_type_index, method_index
):
    content_type = adapter.content_types[content_type_index % len(adapter.content_types)]
    if content_type == "multipart/form-data":
        content_type += "; boundary=fuzzboundary"
    method = adapter.methods[method_index % len(adapter.methods)]
    request_headers = {"Content-Type": content_type, **headers}
    if method == "GET":
        response = client.http.get(adapter.path + "?hub.mode=subscribe&hub.challenge=1", headers=request_headers)
    else:
        response = client.http.post(adapter.path, headers=request_headers, body=body)

    assert response.status_code < 500, (adapter.name, response.status_code, response.body[:300])
    assert data_items() == []
    assert queued_message_count() == 0
