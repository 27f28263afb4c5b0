"""The softphone's Device identity: an agent id encoded to what Twilio's Voice SDK accepts, and back."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.voice import tokens

AGENT_IDS = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)  # agents/service.py's Name
DEVICE_IDENTITY = re.compile(r"^[A-Za-z0-9_]{1,121}$")  # the Voice SDK's rule (research finding 7)


@given(AGENT_IDS)
def test_every_agent_id_encodes_to_a_device_identity_and_back(agent_id: str) -> None:
    identity = tokens.identity_of(agent_id)
    assert DEVICE_IDENTITY.match(identity), identity
    assert tokens.agent_of(identity) == agent_id


def test_plain_ids_stay_readable_and_the_longest_awkward_id_still_fits() -> None:
    assert tokens.identity_of("ada") == "ag_ada"
    assert tokens.identity_of("ada.lovelace:uk-1_x") == "ag_ada_dlovelace_cuk_h1_ux"
    longest = "-." * 32
    assert len(tokens.identity_of(longest)) <= 121 and tokens.agent_of(tokens.identity_of(longest)) == longest


def test_two_agents_never_share_an_identity() -> None:
    ids = ["a_b", "a.b", "a:b", "a-b", "a_ub", "ab"]
    assert len({tokens.identity_of(i) for i in ids}) == len(ids)


@pytest.mark.parametrize("identity", ["ada", "ag_", "ag_a_z", "ag_a_", "ab_!!", "ag_a b", "client:ag_ada"])
def test_what_is_not_an_encoded_agent_is_refused(identity: str) -> None:
    with pytest.raises(ValueError):
        tokens.agent_of(identity)


def test_the_minted_token_decodes_with_the_api_key_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import jwt

    from chalicelib.settings import reload_settings

    for name, value in {
        "TWILIO_ACCOUNT_SID": "AC" + "a1" * 16,
        "TWILIO_API_KEY_SID": "SK" + "b2" * 16,
        "TWILIO_API_KEY_SECRET": "unitTestApiKeySecret0123456789abc",
        "TWILIO_TWIML_APP_SID": "AP" + "c3" * 16,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SWITCHBOARD_SSM_PREFIX", raising=False)
    reload_settings()
    try:
        minted = tokens.mint("ada:night-shift")
    finally:
        monkeypatch.undo()
        reload_settings()
    assert jwt.get_unverified_header(minted.token)["cty"] == "twilio-fpa;v=1"
    claims = jwt.decode(minted.token, "unitTestApiKeySecret0123456789abc", algorithms=["HS256"])
    assert claims["grants"]["identity"] == minted.identity == "ag_ada_cnight_hshift"
    # Outgoing through the TwiML App; incoming so that a colleague's consult rings this agent's Device, and only
    # this agent's: Twilio routes ``client:<identity>`` to Devices registered with a token of that identity.
    assert claims["grants"]["voice"] == {
        "outgoing": {"application_sid": "AP" + "c3" * 16},
        "incoming": {"allow": True},
    }
    assert (claims["iss"], claims["sub"]) == ("SK" + "b2" * 16, "AC" + "a1" * 16)
    assert claims["exp"] - claims["nbf"] == tokens.TTL_SECONDS and claims["exp"] > time.time()
