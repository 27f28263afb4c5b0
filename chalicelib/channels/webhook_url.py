"""The URL a provider called, query string included, for providers that sign it (Twilio).

A signature over the URL holds only against the URL exactly as called: its query string byte for byte
(order, repeated names, percent-encoding). What the Lambda event carries decides how exact we can be:

* ``rawQueryString`` (API Gateway HTTP APIs; the local REST server adds it, having the request line): the
  query as called, the one form.
* API Gateway REST APIs carry the query only parsed and decoded, ``multiValueQueryStringParameters`` (each
  name's values together, in order; names in the order given). The first occurrence order and the values
  are rebuilt, in each standard encoding a configured URL may have used: RFC 3986 (a space is ``%20``),
  HTML forms (``+``), and reserved characters left as typed (``/``, ``:``, ``@``...). A query that
  interleaves a repeated name (``a=1&b=2&a=3``) or escapes unreserved letters cannot be rebuilt; the README
  says to configure such URLs without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

# Characters RFC 3986 allows unescaped in a query value besides the unreserved ones ('&', '=', '+', '#' excepted).
_QUERY_SAFE = "/?:@!$'()*,;"


def called_urls(prefix: str, event: Mapping[str, Any]) -> tuple[str, ...]:
    """``prefix`` (scheme, host, stage and path) plus the query as called; more than one form when not known."""
    raw = event.get("rawQueryString")
    if isinstance(raw, str):
        return (f"{prefix}?{raw}" if raw else prefix,)
    parameters = event.get("multiValueQueryStringParameters") or {}
    pairs = [
        (str(name), str(value))
        for name, values in parameters.items()
        for value in (values if isinstance(values, list) else [values])
    ]
    if not pairs:
        return (prefix,)
    queries = (
        urlencode(pairs, quote_via=quote, safe=""),
        urlencode(pairs, quote_via=quote_plus, safe=""),
        urlencode(pairs, quote_via=quote, safe=_QUERY_SAFE),
    )
    return tuple(dict.fromkeys(f"{prefix}?{query}" for query in queries))
