"""moto's server mode on loopback: DynamoDB, SQS and the rest of AWS for the local stack."""

from __future__ import annotations

import logging
import urllib.request

from moto.server import ThreadedMotoServer

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}

logger = logging.getLogger(__name__)


class MotoServer:
    """One ``ThreadedMotoServer`` bound to 127.0.0.1 that starts from empty state."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; only valid once started."""
        if self._url is None:
            raise RuntimeError("moto server is not running")
        return self._url

    def start(self) -> None:
        """Start serving and forget any state an earlier server in this process left behind."""
        # werkzeug logs every request at INFO; the app's own logs matter more locally.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._url = f"http://{host}:{port}"
        # moto keeps its backends in module globals, so a second stack in the same
        # process (tests) would otherwise see the first one's tables and queues.
        request = urllib.request.Request(f"{self._url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        logger.info("moto server listening on %s", self._url)

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._url is None:
            return
        # Joins the thread; werkzeug's serve_forever closes the socket on its way out.
        self._server.stop()
        self._url = None
