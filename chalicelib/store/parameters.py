"""SSM parameters: the secrets we read, and the routing configuration ops publish over ``routing.yaml``.

Read through Powertools' SSM provider over the shared, resettable client (``aws.parameters()``), so a
reader made while boto3 pointed at a local stack that has since stopped is not kept for the process's life.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib.store import aws


class ParameterMissing(LookupError):
    """The parameter does not exist (yet): normal for the routing override until the first publish."""


def read_secret(name: str, max_age: int) -> str:
    """A SecureString parameter, decrypted; Powertools caches it for ``max_age`` seconds."""
    return str(aws.parameters().get(name, decrypt=True, max_age=max_age))


def read_routing_config(parameter: str) -> str:
    """The routing configuration's YAML as published, read now (the caller keeps its own refresh clock).

    ``ParameterMissing`` when nobody published one yet; any other failure to read propagates as it is.
    """
    try:
        # Our caller decides when to look again (routing.config.current_config): skip Powertools' cache.
        return str(aws.parameters().get(parameter, force_fetch=True))
    except Exception as exc:
        if _parameter_not_found(exc):
            raise ParameterMissing(parameter) from exc
        raise


def publish_routing_config(parameter: str, text: str) -> None:
    """Make ``text`` the routing override; created if the deployed stack only named it.

    Advanced tier: a real routing file outgrows the standard tier's 4 KB.
    """
    aws.client("ssm").put_parameter(Name=parameter, Value=text, Type="String", Tier="Advanced", Overwrite=True)


def _parameter_not_found(exc: Exception) -> bool:
    """Whether Powertools' GetParameterError wraps SSM's ParameterNotFound (it keeps the cause as context)."""
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ParameterNotFound"
