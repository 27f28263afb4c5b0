"""Sign-in tokens and roles: Cognito ID tokens verified against the pool's JWKS (access tokens refused), dev tokens.

The test plays the Cognito user pool: it makes its own RSA keys, publishes
them as a JWKS at the pool's ``/.well-known/jwks.json`` through
``responses`` (nothing leaves the machine), and signs tokens with the claims
Cognito puts in ID and access tokens. The signing is written out here with
``cryptography`` (base64url header and payload, RSASSA-PKCS1-v1_5 SHA-256),
independently of the module and of its JWT library, so the same helper can
also forge the tokens an attacker would send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import responses
from chalice import Chalice
from chalice.test import Client
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib import auth
from chalicelib.auth import ADMIN, AGENT, SUPERVISOR, Principal, require, require_self_or
from chalicelib.auth.tokens import LEEWAY_SECONDS, SigningKeysUnavailable
from chalicelib.errors import Forbidden, InvalidPayload, NotSignedIn
from chalicelib.settings import MissingSecret, reload_settings

REGION = "eu-west-1"
POOL_ID = "eu-west-1_AbCdEfGhI"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
CLIENT_ID = "4tbm6v1ej4hq0s7lm0p9example"
SUB = "a1b2c3d4-5678-90ab-cdef-111122223333"
NOW = 1_760_000_000  # tokens below are issued at NOW and checked at NOW + a little

POOL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
POOL_KID = "poolkey1+AbC="  # Cognito kids are base64 strings
ROTATED_KID = "poolkey2+DeF="


# --- playing Cognito ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {"alg": "RS256", "e": _b64(e), "kid": kid, "kty": "RSA", "n": _b64(n), "use": "sig"}


def _sign(claims: dict[str, Any], key: rsa.RSAPrivateKey = POOL_KEY, kid: str = POOL_KID) -> str:
    signing_input = f"{_json_b64({'kid': kid, 'alg': 'RS256'})}.{_json_b64(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def current(claims: dict[str, Any]) -> dict[str, Any]:
    """The same claims issued just now, for code that checks against the clock."""
    issued = int(time.time())
    return {**claims, "auth_time": issued, "iat": issued, "exp": issued + 3600}


def id_claims(**changes: Any) -> dict[str, Any]:
    """An ID token's payload as Cognito issues it (plus the custom attribute agents have)."""
    claims: dict[str, Any] = {
        "sub": SUB,
        "cognito:groups": ["supervisor", "Everyone-EU"],
        "email_verified": True,
        "iss": ISSUER,
        "cognito:username": "jdoe",
        "origin_jti": "d1c2b3a4-0000-4000-8000-000000000001",
        "custom:agent_id": "agent-0042",
        "aud": CLIENT_ID,
        "event_id": "e1e2e3e4-0000-4000-8000-000000000002",
        "token_use": "id",
        "auth_time": NOW,
        "name": "Jane Doe",
        "exp": NOW + 3600,
        "iat": NOW,
        "jti": "f1f2f3f4-0000-4000-8000-000000000003",
        "email": "jane@example.com",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def access_claims(**changes: Any) -> dict[str, Any]:
    """An access token's payload as Cognito issues it: client_id instead of aud, no profile attributes."""
    claims: dict[str, Any] = {
        "sub": SUB,
        "cognito:groups": ["agent"],
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "origin_jti": "d1c2b3a4-0000-4000-8000-000000000001",
        "event_id": "e1e2e3e4-0000-4000-8000-000000000002",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": NOW,
        "exp": NOW + 3600,
        "iat": NOW,
        "jti": "a9a8a7a6-0000-4000-8000-000000000004",
        "username": "jdoe",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


@pytest.fixture(autouse=True)
def cognito_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SWITCHBOARD_SSM_PREFIX", "SWITCHBOARD_DEV_AUTH", "DEV_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COGNITO_ISSUER", ISSUER)
    monkeypatch.setenv("COGNITO_CLIENT_ID", CLIENT_ID)
    reload_settings()
    auth.forget_signing_keys()
    yield
    auth.forget_signing_keys()
    reload_settings()


@pytest.fixture
def pool() -> Iterator[responses.RequestsMock]:
    """The user pool's JWKS endpoint; any other URL fails to connect."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(JWKS_URL, json={"keys": [_jwk(POOL_KEY, POOL_KID)]})
        yield mock


def jwks_fetches(mock: responses.RequestsMock) -> int:
    return sum(1 for call in mock.calls if call.request.url == JWKS_URL)


def rejected(token: str, now: float = NOW + 60) -> str:
    with pytest.raises(NotSignedIn) as raised:
        auth.verify(token, now=now)
    assert raised.value.status == 401
    assert raised.value.code == "unauthenticated"
    return raised.value.message


# --- Cognito tokens that verify ------------------------------------------------------


def test_an_id_token_names_the_agent_and_roles(pool):
    principal = auth.verify(_sign(id_claims()), now=NOW + 60)

    assert principal == Principal(
        subject=SUB,
        agent_id="agent-0042",
        roles=frozenset({SUPERVISOR}),  # groups that are not roles are dropped
        name="Jane Doe",
        email="jane@example.com",
    )


def test_an_access_token_is_refused_so_a_username_cannot_stand_in_for_the_agent_id(pool):
    """Access tokens carry no ``custom:agent_id``: a user named like another agent would act as that agent."""
    impostor = access_claims(username="agent-0042", **{"cognito:groups": ["agent", "admin"]})

    assert "send the ID token" in rejected(_sign(impostor))
    with pytest.raises(NotSignedIn, match="send the ID token"):
        auth.from_headers({"Authorization": f"Bearer {_sign(current(impostor))}"})
    with pytest.raises(NotSignedIn, match="send the ID token"):
        auth.from_query({"token": _sign(current(impostor))})
    # The same user's ID token names the agent the admin gave them.
    assert auth.verify(_sign(id_claims(**{"cognito:username": "agent-0042"})), now=NOW).agent_id == "agent-0042"
    assert (
        auth.verify(
            _sign(id_claims(**{"cognito:username": "agent-0042", "custom:agent_id": "agent-7"})), now=NOW
        ).agent_id
        == "agent-7"
    )


def test_agent_id_falls_back_to_the_username_then_sub(pool):
    without_custom = auth.verify(_sign(id_claims(**{"custom:agent_id": None})), now=NOW)
    bare = auth.verify(_sign(id_claims(**{"custom:agent_id": None, "cognito:username": None})), now=NOW)
    no_groups = auth.verify(_sign(id_claims(**{"cognito:groups": None})), now=NOW)

    assert without_custom.agent_id == "jdoe"
    assert bare.agent_id == SUB
    assert no_groups.roles == frozenset()


def test_the_jwks_is_fetched_once_for_many_tokens(pool):
    for offset in range(25):
        auth.verify(_sign(id_claims(iat=NOW + offset, exp=NOW + 3600 + offset)), now=NOW + 60)

    assert jwks_fetches(pool) == 1


def test_clock_skew_within_the_leeway_is_tolerated(pool):
    token = _sign(id_claims(iat=NOW, exp=NOW + 3600))

    assert auth.verify(token, now=NOW + 3600 + LEEWAY_SECONDS - 1).agent_id == "agent-0042"
    assert auth.verify(token, now=NOW - LEEWAY_SECONDS + 1).agent_id == "agent-0042"


def test_a_rotated_key_is_fetched_when_a_token_names_it(pool):
    auth.verify(_sign(id_claims()), now=NOW)
    pool.replace(responses.GET, JWKS_URL, json={"keys": [_jwk(POOL_KEY, POOL_KID), _jwk(ROTATED_KEY, ROTATED_KID)]})

    principal = auth.verify(_sign(id_claims(), ROTATED_KEY, ROTATED_KID), now=NOW)

    assert principal.agent_id == "agent-0042"
    assert jwks_fetches(pool) == 2


# --- Cognito tokens that do not ------------------------------------------------------


def test_an_expired_token_is_rejected(pool):
    token = _sign(id_claims(exp=NOW + 3600))

    assert "token expired" in rejected(token, now=NOW + 3600 + LEEWAY_SECONDS)
    assert "token expired" in rejected(_sign(id_claims(exp=NOW - 10)), now=NOW + LEEWAY_SECONDS)


def test_a_token_not_yet_valid_is_rejected(pool):
    issued_later = _sign(id_claims(iat=NOW + 600, exp=NOW + 4200))
    not_before_later = _sign(id_claims(nbf=NOW + 600))

    assert "not yet valid" in rejected(issued_later, now=NOW)
    assert "not yet valid" in rejected(not_before_later, now=NOW)


def test_a_token_without_exp_or_with_a_text_exp_is_rejected(pool):
    assert "exp and iat are required" in rejected(_sign(id_claims(exp=None)))
    assert "exp is not a number" in rejected(_sign(id_claims(exp="tomorrow")))


def test_a_token_from_another_issuer_is_rejected(pool):
    other_pool = f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_SomeoneElse"

    assert "wrong issuer" in rejected(_sign(id_claims(iss=other_pool)))
    assert "wrong issuer" in rejected(_sign(id_claims(iss=None)))


def test_a_token_for_another_app_client_is_rejected(pool):
    assert "wrong audience" in rejected(_sign(id_claims(aud="another-app-client")))
    assert "wrong audience" in rejected(_sign(id_claims(aud=[CLIENT_ID, "another-app-client"])))
    # An ID token is judged by aud; a client_id naming our client does not stand in for it.
    assert "wrong audience" in rejected(_sign(id_claims(aud=None, client_id=CLIENT_ID)))


@pytest.mark.parametrize("token_use", ["access", "refresh", "ID", "", None])
def test_a_token_of_another_use_is_rejected(pool, token_use):
    assert "wrong token_use" in rejected(_sign(id_claims(token_use=token_use)))


def test_an_unknown_kid_refetches_the_jwks_once_then_fails(pool):
    auth.verify(_sign(id_claims()), now=NOW)
    assert jwks_fetches(pool) == 1

    assert "unknown signing key" in rejected(_sign(id_claims(), ATTACKER_KEY, "attacker-kid"))
    assert jwks_fetches(pool) == 2
    # More made-up kids right away do not each cost a call to Cognito.
    assert "unknown signing key" in rejected(_sign(id_claims(), ATTACKER_KEY, "attacker-kid-2"))
    assert jwks_fetches(pool) == 2


def test_a_tampered_payload_is_rejected(pool):
    header, _, signature = _sign(id_claims()).split(".")
    promoted = _json_b64(id_claims(**{"cognito:groups": ["admin"]}))

    assert "bad token signature" in rejected(f"{header}.{promoted}.{signature}")


def test_a_token_signed_by_another_key_under_the_pools_kid_is_rejected(pool):
    assert "bad token signature" in rejected(_sign(id_claims(), ATTACKER_KEY, POOL_KID))


def test_alg_none_is_rejected_without_a_key_lookup(pool):
    unsigned = f"{_json_b64({'kid': POOL_KID, 'alg': 'none'})}.{_json_b64(id_claims(**{'cognito:groups': ['admin']}))}."

    assert "unsupported token algorithm" in rejected(unsigned)
    assert jwks_fetches(pool) == 0


def test_hs256_signed_with_the_public_key_is_rejected(pool):
    """The classic confusion attack: the pool's public key, which anyone can fetch, used as an HMAC secret."""
    public_pem = POOL_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = _json_b64(id_claims(**{"cognito:groups": ["admin"]}))
    for secret in (public_pem, json.dumps(_jwk(POOL_KEY, POOL_KID)).encode()):
        signing_input = f"{_json_b64({'kid': POOL_KID, 'alg': 'HS256'})}.{claims}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()

        assert "unsupported token algorithm" in rejected(f"{signing_input}.{_b64(mac)}")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        "..",
        "ey.ey.ey",
        f"{_json_b64(['not', 'an', 'object'])}.{_json_b64({})}.",
        f"{_json_b64({'alg': 'RS256'})}.{_json_b64({})}.sig",  # no kid
        f"{_json_b64({'alg': 'RS256', 'kid': 7})}.{_json_b64({})}.sig",
        f"{_json_b64({'alg': 'RS256', 'kid': POOL_KID})}.bm90IGpzb24.c2ln",  # payload not JSON
        f"{_json_b64({'alg': 'RS256', 'kid': POOL_KID})}.{_json_b64({})}.%%%",
        "é.ü.ß",
        "x" * 20_000,
    ],
)
def test_garbage_is_rejected(pool, garbage):
    rejected(garbage)


def test_a_token_signed_before_the_payload_was_a_json_object_is_rejected(pool):
    header = _json_b64({"kid": POOL_KID, "alg": "RS256"})
    signing_input = f"{header}.{_json_b64(['a', 'list'])}"
    signature = POOL_KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    assert "malformed token" in rejected(f"{signing_input}.{_b64(signature)}")


def test_an_unreachable_jwks_is_a_503_and_is_tried_again_next_time():
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, body=requests.ConnectTimeout("timed out"))
        with pytest.raises(SigningKeysUnavailable) as raised:
            auth.verify(_sign(id_claims()), now=NOW)
    assert (raised.value.status, raised.value.code) == (503, "signing_keys_unavailable")
    assert isinstance(raised.value, NotSignedIn)

    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, status=500, body="oops")
        with pytest.raises(SigningKeysUnavailable):
            auth.verify(_sign(id_claims()), now=NOW)

    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, json={"keys": [_jwk(POOL_KEY, POOL_KID)]})
        assert auth.verify(_sign(id_claims()), now=NOW).agent_id == "agent-0042"


def test_a_jwks_without_usable_keys_rejects_every_token():
    unusable = [
        {**_jwk(POOL_KEY, POOL_KID), "use": "enc"},
        {**_jwk(POOL_KEY, POOL_KID), "alg": "RS512"},
        {"kid": POOL_KID, "kty": "oct", "k": "c2VjcmV0"},
        {"kid": POOL_KID, "kty": "RSA", "n": "!!", "e": "AQAB"},
        "not-a-key",
    ]
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, json={"keys": unusable})
        assert "unknown signing key" in rejected(_sign(id_claims()))


def test_a_deployment_without_its_user_pool_says_so(pool, monkeypatch):
    monkeypatch.delenv("COGNITO_ISSUER")
    reload_settings()

    with pytest.raises(MissingSecret) as raised:
        auth.verify(_sign(id_claims()), now=NOW)
    assert raised.value.name == "COGNITO_ISSUER"
    assert str(raised.value) == "setting COGNITO_ISSUER is not configured"


def test_a_rejected_token_is_never_logged(pool, caplog, capsys):
    caplog.set_level("DEBUG")
    token = _sign(id_claims(exp=NOW - 3600))

    rejected(token)

    captured = capsys.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert token not in logged
    assert token.split(".")[1] not in logged


# --- headers and query strings -------------------------------------------------------


def test_a_bearer_header_signs_in_in_any_case(pool):
    token = _sign(current(id_claims()))

    assert auth.from_headers({"Authorization": f"Bearer {token}"}).agent_id == "agent-0042"
    assert auth.from_headers({"authorization": f"bearer  {token} "}).agent_id == "agent-0042"


@pytest.mark.parametrize(
    "headers", [None, {}, {"Authorization": ""}, {"Authorization": "Bearer "}, {"Authorization": "Basic amRvZTpwdw=="}]
)
def test_no_bearer_header_asks_to_sign_in(headers):
    with pytest.raises(NotSignedIn) as raised:
        auth.from_headers(headers)
    assert raised.value.message == "sign in: send Authorization: Bearer <token>"
    assert raised.value.to_body() == {"error": "unauthenticated", "message": raised.value.message}


def test_a_websocket_signs_in_with_the_token_in_the_query_string(pool):
    assert auth.from_query({"token": _sign(current(id_claims()))}).agent_id == "agent-0042"
    with pytest.raises(NotSignedIn, match=r"\?token="):
        auth.from_query({"agent_id": "jdoe"})
    with pytest.raises(NotSignedIn):
        auth.from_query(None)


# --- local dev tokens ---------------------------------------------------------------


@pytest.fixture
def dev_auth(monkeypatch: pytest.MonkeyPatch) -> str:
    key = auth.generate_dev_key()
    monkeypatch.setenv("SWITCHBOARD_DEV_AUTH", "1")
    monkeypatch.setenv("DEV_SIGNING_KEY", key)
    reload_settings()
    return key


def test_generate_dev_key_makes_an_rsa_private_key_in_pem():
    pem = auth.generate_dev_key()

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size >= 2048
    assert pem != auth.generate_dev_key()


def test_a_dev_token_round_trips_with_dev_auth_on(dev_auth):
    token = auth.issue_dev_token("agent-7", [AGENT, SUPERVISOR], name="Ada")

    principal = auth.verify(token)

    assert principal.agent_id == "agent-7"
    assert principal.roles == frozenset({AGENT, SUPERVISOR})
    assert principal.name == "Ada"
    assert principal.email == "agent-7@switchboard.local"
    assert principal.subject == auth.verify(auth.issue_dev_token("agent-7", [])).subject  # stable per agent


def test_a_dev_token_is_shaped_like_a_cognito_id_token(dev_auth):
    token = auth.issue_dev_token("agent-7", [ADMIN], ttl_seconds=600)
    header_part, payload_part, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    claims = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))

    assert header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == "switchboard-local"
    assert claims["token_use"] == "id"
    assert claims["cognito:username"] == "agent-7"
    assert claims["cognito:groups"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 600
    assert {"sub", "aud", "email", "name"} <= claims.keys()


def test_dev_tokens_expire(dev_auth):
    token = auth.issue_dev_token("agent-7", [AGENT], ttl_seconds=60)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))

    with pytest.raises(NotSignedIn, match="token expired"):
        auth.verify(token, now=claims["exp"] + LEEWAY_SECONDS)


def test_a_dev_token_from_an_earlier_key_is_rejected(dev_auth, monkeypatch):
    token = auth.issue_dev_token("agent-7", [AGENT])
    monkeypatch.setenv("DEV_SIGNING_KEY", auth.generate_dev_key())

    with pytest.raises(NotSignedIn, match="local key changed"):
        auth.verify(token)


def test_dev_auth_rejects_cognito_tokens(dev_auth, pool):
    with pytest.raises(NotSignedIn):
        auth.verify(_sign(id_claims()), now=NOW)
    assert jwks_fetches(pool) == 0


def test_dev_tokens_are_not_issued_or_accepted_with_dev_auth_off(dev_auth, monkeypatch, pool):
    token = auth.issue_dev_token("agent-7", [ADMIN])
    monkeypatch.delenv("SWITCHBOARD_DEV_AUTH")
    reload_settings()

    with pytest.raises(Forbidden):
        auth.issue_dev_token("agent-7", [ADMIN])
    assert "unknown signing key" in rejected(token, now=NOW)


def test_dev_token_requests_are_checked(dev_auth):
    with pytest.raises(InvalidPayload, match="unknown superuser"):
        auth.issue_dev_token("agent-7", ["superuser"])
    with pytest.raises(InvalidPayload, match="agent_id"):
        auth.issue_dev_token("", [AGENT])
    with pytest.raises(InvalidPayload, match="ttl_seconds"):
        auth.issue_dev_token("agent-7", [AGENT], ttl_seconds=0)


def test_dev_auth_without_its_key_says_so(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DEV_AUTH", "1")
    reload_settings()

    with pytest.raises(MissingSecret) as raised:
        auth.issue_dev_token("agent-7", [AGENT])
    assert raised.value.name == "DEV_SIGNING_KEY"


# --- roles --------------------------------------------------------------------------


def principal(*roles: str, agent_id: str = "agent-1") -> Principal:
    return Principal(subject=f"sub-{agent_id}", agent_id=agent_id, roles=frozenset(roles))


NOBODY, AN_AGENT, A_SUPERVISOR, AN_ADMIN = principal(), principal(AGENT), principal(SUPERVISOR), principal(ADMIN)


@pytest.mark.parametrize(
    ("who", "role", "allowed"),
    [
        (NOBODY, AGENT, False),
        (NOBODY, SUPERVISOR, False),
        (NOBODY, ADMIN, False),
        (AN_AGENT, AGENT, True),
        (AN_AGENT, SUPERVISOR, False),
        (AN_AGENT, ADMIN, False),
        (A_SUPERVISOR, AGENT, True),
        (A_SUPERVISOR, SUPERVISOR, True),
        (A_SUPERVISOR, ADMIN, False),
        (AN_ADMIN, AGENT, True),
        (AN_ADMIN, SUPERVISOR, True),
        (AN_ADMIN, ADMIN, True),
    ],
)
def test_require_follows_admin_over_supervisor_over_agent(who, role, allowed):
    if allowed:
        require(who, role)
    else:
        with pytest.raises(Forbidden, match=f"needs the {role} role"):
            require(who, role)


def test_require_admits_any_of_several_roles():
    require(principal(AGENT, ADMIN), SUPERVISOR)
    require(A_SUPERVISOR, ADMIN, SUPERVISOR)
    with pytest.raises(Forbidden, match="needs the supervisor or admin role"):
        require(AN_AGENT, SUPERVISOR, ADMIN)


def test_require_refuses_unknown_or_no_roles():
    with pytest.raises(ValueError, match="unknown role 'supervisors'"):
        require(AN_ADMIN, "supervisors")
    with pytest.raises(ValueError):
        require(AN_ADMIN)


@pytest.mark.parametrize(
    ("who", "agent_id", "allowed"),
    [
        (AN_AGENT, "agent-1", True),
        (AN_AGENT, "agent-2", False),
        (NOBODY, "agent-1", False),  # signed in, in no group: not an agent, not even as themselves
        (A_SUPERVISOR, "agent-1", True),
        (A_SUPERVISOR, "agent-2", True),
        (AN_ADMIN, "agent-2", True),
    ],
)
def test_require_self_or_supervisor_by_default(who, agent_id, allowed):
    if allowed:
        require_self_or(who, agent_id)
    else:
        with pytest.raises(Forbidden, match="agents may only act as themselves"):
            require_self_or(who, agent_id)


def test_require_self_or_named_roles():
    require_self_or(AN_ADMIN, "agent-2", ADMIN)
    require_self_or(A_SUPERVISOR, "agent-1", ADMIN)  # themselves
    with pytest.raises(Forbidden, match="needs the admin role"):
        require_self_or(A_SUPERVISOR, "agent-2", ADMIN)


# --- the view decorator -------------------------------------------------------------


def test_signed_in_hands_the_view_its_principal(pool):
    request = SimpleNamespace(headers={"Authorization": f"Bearer {_sign(current(id_claims()))}"})
    signed_in = auth.authorized(lambda: request)

    @signed_in(AGENT)
    def view(agent_id: str, principal: Principal) -> dict[str, str]:
        return {"agent_id": agent_id, "caller": principal.agent_id}

    assert view(agent_id="x") == {"agent_id": "x", "caller": "agent-0042"}
    assert view.__name__ == "view"


def test_signed_in_refuses_strangers_and_the_wrong_role(pool):
    request = SimpleNamespace(headers={})
    signed_in = auth.authorized(lambda: request)
    calls: list[Principal] = []

    @signed_in(SUPERVISOR)
    def view(principal: Principal) -> None:
        calls.append(principal)

    with pytest.raises(NotSignedIn):
        view()
    agent = id_claims(**{"cognito:groups": ["agent"]})
    request.headers = {"Authorization": f"Bearer {_sign(current(agent))}"}
    with pytest.raises(Forbidden):
        view()
    assert calls == []
    with pytest.raises(ValueError, match="unknown roles"):
        signed_in("root")


def test_signed_in_works_on_a_chalice_route(dev_auth):
    app = Chalice(app_name="auth-test")
    signed_in = auth.authorized(lambda: app.current_request)

    @app.route("/agents/{agent_id}")
    @signed_in(AGENT)
    def agent(agent_id: str, principal: Principal) -> dict[str, Any]:
        require_self_or(principal, agent_id)
        return {"agent_id": agent_id, "caller": principal.agent_id, "roles": sorted(principal.roles)}

    token = auth.issue_dev_token("agent-7", [AGENT])
    with Client(app) as client:
        response = client.http.get("/agents/agent-7", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json_body == {"agent_id": "agent-7", "caller": "agent-7", "roles": ["agent"]}


# --- where the console signs in, and where the keys are ------------------------------------------------------


def test_sign_in_options_name_the_pools_region_endpoint_and_client():
    assert auth.sign_in_options() == {
        "cognito": {"endpoint": f"https://cognito-idp.{REGION}.amazonaws.com", "client_id": CLIENT_ID},
        "dev": False,
    }


def test_a_cognito_endpoint_moves_the_console_and_the_keys_but_not_the_issuer(monkeypatch):
    monkeypatch.setenv("COGNITO_ENDPOINT", "http://127.0.0.1:5005/")
    reload_settings()
    assert auth.sign_in_options()["cognito"]["endpoint"] == "http://127.0.0.1:5005"
    with responses.RequestsMock() as mock:
        mock.get(f"http://127.0.0.1:5005/{POOL_ID}/.well-known/jwks.json", json={"keys": [_jwk(POOL_KEY, POOL_KID)]})
        assert auth.verify(_sign(id_claims()), now=NOW + 60).agent_id  # iss is still the pool's real URL
        assert len(mock.calls) == 1


def test_dev_sign_in_hides_cognito(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DEV_AUTH", "1")
    reload_settings()
    assert auth.sign_in_options() == {"cognito": None, "dev": True}
