"""Sign-in tokens: verify the user pool's (in AWS) or the local key's (``SWITCHBOARD_DEV_AUTH=1``), mint local ones.

In AWS, agents sign in through the Cognito user pool ``COGNITO_ISSUER`` with the app client
``COGNITO_CLIENT_ID`` and send its ID token: an RS256 JWT signed by a key the pool publishes at
``{issuer}/.well-known/jwks.json``; the keys are fetched once per container, kept by ``kid``, and fetched again
when a token names a key we have not seen (the pool rotated its keys). Access tokens are refused: they carry no
``custom:agent_id`` (nor ``aud``, ``name``, ``email``), only the Cognito ``username``, so a user whose username
is another agent's id would act as that agent. Only the ID token names the agent the admin assigned.

Locally there is no user pool: ``issue_dev_token`` mints Cognito-shaped ID tokens signed with the
``DEV_SIGNING_KEY`` secret (``generate_dev_key`` makes one) and issuer ``switchboard-local``, and ``verify``
accepts those only. Every rejection is a ``NotSignedIn`` (401) naming the reason, or ``SigningKeysUnavailable``
(503, a ``NotSignedIn`` too) when the pool's keys cannot be fetched; tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from aws_lambda_powertools import Logger
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.auth.principal import ROLES, Principal
from chalicelib.errors import Forbidden, InvalidPayload, NotSignedIn
from chalicelib.settings import DEV_SIGNING_KEY, MissingSetting, Settings, get_secret, get_settings

logger = Logger(service="switchboard", child=True)

ALGORITHM = "RS256"  # the only one Cognito user pools sign with; never taken from the token
LEEWAY_SECONDS = 30  # clock skew allowed on exp, iat and nbf
JWKS_TIMEOUT_SECONDS = 3
# After a token with an unknown kid made us refetch the keys, further unknown kids wait this long before the
# next refetch: made-up kids must not turn every request into a call to Cognito.
UNKNOWN_KID_REFETCH_SECONDS = 10
MAX_TOKEN_CHARS = 16 * 1024
# ID tokens only: the agent id is the admin-set custom:agent_id, which access tokens never carry.
TOKEN_USES = frozenset({"id"})

DEV_ISSUER = "switchboard-local"
DEV_CLIENT_ID = "switchboard-local"
DEV_TTL_SECONDS = 8 * 3600
# Dev subjects are UUIDs like Cognito's, the same for the same agent id on every machine.
_DEV_SUBJECTS = uuid.uuid5(uuid.NAMESPACE_URL, "https://switchboard.local/dev-subjects")

SIGN_IN_HINT = "sign in: send Authorization: Bearer <token>"


class SigningKeysUnavailable(NotSignedIn):
    """The user pool's keys could not be fetched just now: 503, so clients retry instead of signing the user out."""

    status = 503
    code = "signing_keys_unavailable"


def verify(token: str, now: float | None = None) -> Principal:
    """The principal a valid token names; ``NotSignedIn`` saying why for any other token."""
    settings = get_settings()
    moment = time.time() if now is None else now
    try:
        if settings.dev_auth:
            claims = _verified_claims(token, _dev_public_key, DEV_ISSUER, DEV_CLIENT_ID, moment, frozenset({"id"}))
        else:
            issuer, client_id = _cognito_config(settings)
            keys_url = jwks_url(settings)
            claims = _verified_claims(
                token, lambda kid: _SIGNING_KEYS.key(keys_url, kid), issuer, client_id, moment, TOKEN_USES
            )
    except NotSignedIn as error:
        logger.info("sign-in token rejected", extra={"reason": error.message})
        raise
    return _principal(claims)


def from_headers(headers: Mapping[str, str] | None) -> Principal:
    """The principal of ``Authorization: Bearer <token>`` (header name and scheme in any case)."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "authorization"), None)
    scheme, _, token = (value or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotSignedIn(SIGN_IN_HINT)
    return verify(token.strip())


def from_query(params: Mapping[str, str] | None) -> Principal:
    """The principal of ``?token=<token>``: browsers cannot send headers when opening an API Gateway WebSocket.

    (The token then sits in the URL: keep the WebSocket stage's access log format free of the query string.)
    """
    token = (params or {}).get("token")
    if not token:
        raise NotSignedIn("sign in: connect with ?token=<token>")
    return verify(token)


def issue_dev_token(
    agent_id: str, roles: list[str], name: str | None = None, ttl_seconds: int = DEV_TTL_SECONDS
) -> str:
    """A local ID token for ``agent_id`` in ``roles``, shaped like Cognito's; only with ``SWITCHBOARD_DEV_AUTH=1``."""
    if not get_settings().dev_auth:
        raise Forbidden("local sign-in is off: tokens come from the Cognito user pool (SWITCHBOARD_DEV_AUTH=1 locally)")
    if not agent_id:
        raise InvalidPayload("agent_id: name the agent to sign in as")
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise InvalidPayload(f"roles: unknown {', '.join(map(str, unknown))}; roles are {', '.join(ROLES)}")
    if ttl_seconds <= 0:
        raise InvalidPayload("ttl_seconds: must be positive")
    key, kid = _dev_key()
    issued = int(time.time())
    claims = {
        "sub": str(uuid.uuid5(_DEV_SUBJECTS, agent_id)),
        "cognito:username": agent_id,
        "cognito:groups": list(dict.fromkeys(roles)),
        "token_use": "id",
        "aud": DEV_CLIENT_ID,
        "iss": DEV_ISSUER,
        "auth_time": issued,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "email": f"{agent_id}@switchboard.local",
        "name": name or agent_id,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


def generate_dev_key() -> str:
    """A new RSA private key in PEM, to use as ``DEV_SIGNING_KEY`` for a local stack."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


def forget_signing_keys() -> None:
    """Drop the cached user pool keys (tests serve a new pool each time)."""
    _SIGNING_KEYS.forget()


# --- verification -------------------------------------------------------------------


def _verified_claims(
    token: str,
    key_for: Callable[[str], rsa.RSAPublicKey],
    issuer: str,
    client_id: str,
    now: float,
    token_uses: Collection[str],
) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise NotSignedIn("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise NotSignedIn("malformed token") from None
    # Checked before any key lookup: "none", HS256 and friends never reach a verifier or the JWKS endpoint.
    if header.get("alg") != ALGORITHM:
        raise NotSignedIn(f"unsupported token algorithm: sign-in tokens are {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise NotSignedIn("token names no signing key")
    key = key_for(kid)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            # The signature only: claims are checked below, against ``now`` and with our own messages.
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.InvalidSignatureError:
        raise NotSignedIn("bad token signature") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise NotSignedIn("malformed token") from None
    _check_claims(claims, issuer, client_id, now, token_uses)
    return claims


def _check_claims(claims: dict[str, Any], issuer: str, client_id: str, now: float, token_uses: Collection[str]) -> None:
    if claims.get("iss") != issuer:
        raise NotSignedIn("wrong issuer: the token is not from this app's user pool")
    token_use = claims.get("token_use")
    if token_use == "access":
        raise NotSignedIn(
            "wrong token_use: access tokens do not name the agent (no custom:agent_id); send the ID token"
        )
    if token_use not in token_uses:
        raise NotSignedIn("wrong token_use: send the ID token")
    # ID tokens name the app client in aud (access tokens, refused above, would name it in client_id).
    if claims.get("aud") != client_id:
        raise NotSignedIn("wrong audience: the token is for another app client")
    expires, issued, not_before = _time(claims, "exp"), _time(claims, "iat"), _time(claims, "nbf")
    if expires is None or issued is None:
        raise NotSignedIn("malformed token: exp and iat are required")
    if now >= expires + LEEWAY_SECONDS:
        raise NotSignedIn("token expired: sign in again")
    if issued > now + LEEWAY_SECONDS or (not_before is not None and not_before > now + LEEWAY_SECONDS):
        raise NotSignedIn("token not yet valid")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise NotSignedIn("malformed token: sub is required")


def _time(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NotSignedIn(f"malformed token: {name} is not a number")
    return float(value)


def _principal(claims: dict[str, Any]) -> Principal:
    subject: str = claims["sub"]
    agent_id = next(
        (
            value
            for value in (claims.get("custom:agent_id"), claims.get("cognito:username"))
            if isinstance(value, str) and value
        ),
        subject,
    )
    groups = claims.get("cognito:groups")
    known = [group for group in groups if group in ROLES] if isinstance(groups, list) else []
    return Principal(
        subject=subject,
        agent_id=agent_id,
        roles=frozenset(known),
        name=_text(claims.get("name")),
        email=_text(claims.get("email")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _cognito_config(settings: Settings) -> tuple[str, str]:
    # A deployment without its user pool is misconfigured, not the caller's fault: 503 naming the setting.
    if not settings.cognito_issuer:
        raise MissingSetting("COGNITO_ISSUER")
    if not settings.cognito_client_id:
        raise MissingSetting("COGNITO_CLIENT_ID")
    return settings.cognito_issuer, settings.cognito_client_id


# --- the user pool's keys ------------------------------------------------------------


def cognito_endpoint(settings: Settings) -> str:
    """Cognito's API endpoint for the configured pool's region (the console signs in there)."""
    if settings.cognito_endpoint:
        return settings.cognito_endpoint
    issuer, _ = _cognito_config(settings)
    host = urlsplit(issuer).netloc  # cognito-idp.<region>.amazonaws.com
    return f"https://{host}"


def sign_in_options() -> dict[str, Any]:
    """How the console signs in here: Cognito's endpoint and app client (public values), and/or local dev tokens."""
    settings = get_settings()
    cognito = None
    if settings.cognito_issuer and settings.cognito_client_id and not settings.dev_auth:
        cognito = {"endpoint": cognito_endpoint(settings), "client_id": settings.cognito_client_id}
    return {"cognito": cognito, "dev": settings.dev_auth}


def jwks_url(settings: Settings) -> str:
    """Where the configured pool publishes its keys: from the configured issuer, never the token's."""
    issuer, _ = _cognito_config(settings)
    if settings.cognito_endpoint:
        pool_id = issuer.rstrip("/").rsplit("/", 1)[1]
        return f"{settings.cognito_endpoint}/{pool_id}/.well-known/jwks.json"
    return f"{issuer}/.well-known/jwks.json"


class _SigningKeys:
    """The user pools' public keys by JWKS URL and kid, shared by every request of the container."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, rsa.RSAPublicKey]] = {}
        self._refetched_at: dict[str, float] = {}

    def key(self, url: str, kid: str) -> rsa.RSAPublicKey:
        with self._lock:
            keys = self._keys.get(url)
            if keys is None:
                keys = self._keys[url] = _fetch_keys(url)
            elif kid not in keys and self._may_refetch(url):
                self._refetched_at[url] = time.monotonic()
                keys = self._keys[url] = _fetch_keys(url)
        key = keys.get(kid)
        if key is None:
            raise NotSignedIn("unknown signing key: the token is not from this app's user pool")
        return key

    def _may_refetch(self, url: str) -> bool:
        last = self._refetched_at.get(url)
        return last is None or time.monotonic() - last >= UNKNOWN_KID_REFETCH_SECONDS

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._refetched_at.clear()


_SIGNING_KEYS = _SigningKeys()


def _fetch_keys(url: str) -> dict[str, rsa.RSAPublicKey]:
    try:
        response = requests.get(url, timeout=JWKS_TIMEOUT_SECONDS, allow_redirects=False)
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        logger.error("cannot fetch the user pool's signing keys", extra={"url": url, "error": str(exc)})
        raise SigningKeysUnavailable(
            "cannot check sign-in tokens right now: the user pool's keys are unavailable"
        ) from None
    entries = document.get("keys") if isinstance(document, dict) else None
    keys: dict[str, rsa.RSAPublicKey] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            key = jwt.PyJWK(entry, algorithm=ALGORITHM).key
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if isinstance(key, rsa.RSAPublicKey):
            keys[entry["kid"]] = key
    if not keys:
        logger.error("the user pool publishes no RS256 signing keys", extra={"url": url})
    return keys


# --- the local key -----------------------------------------------------------------


def _dev_key() -> tuple[rsa.RSAPrivateKey, str]:
    return _load_dev_key(get_secret(DEV_SIGNING_KEY))


@lru_cache(maxsize=4)
def _load_dev_key(pem: str) -> tuple[rsa.RSAPrivateKey, str]:
    # Single-line PEMs with literal \n come from .env files.
    key = serialization.load_pem_private_key(pem.replace("\\n", "\n").encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{DEV_SIGNING_KEY} must be an RSA private key in PEM (see generate_dev_key)")
    return key, _thumbprint(key.public_key())


def _dev_public_key(kid: str) -> rsa.RSAPublicKey:
    key, expected = _dev_key()
    if kid != expected:
        raise NotSignedIn("unknown signing key: the local key changed since this token was issued; sign in again")
    return key.public_key()


def _thumbprint(key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint, the dev tokens' kid."""
    numbers = key.public_numbers()
    members = {"e": _b64_uint(numbers.e), "kty": "RSA", "n": _b64_uint(numbers.n)}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _b64_uint(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
