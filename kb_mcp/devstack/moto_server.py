"""moto's AWS endpoint (Secrets Manager and friends) on 127.0.0.1, in a background thread.

aiobotocore does not see moto's in-process ``mock_aws`` patching, so the local
stack and the tests run moto in server mode and point clients at
``endpoint_url``. moto keeps its state in process-wide backends: every server in
one process shares it, and ``reset()`` empties it.
"""

from __future__ import annotations

import urllib.request
from types import TracebackType
from typing import Self

import structlog
from moto.server import ThreadedMotoServer

__all__ = ["MotoSecretsServer"]

logger = structlog.get_logger(__name__)

_RESET_TIMEOUT_S = 10.0


class MotoSecretsServer:
    """A started-on-demand ``ThreadedMotoServer`` bound to 127.0.0.1 on a free port.

    Started again after ``stop()``, it binds the port it had: clients keep their endpoint.
    """

    def __init__(self) -> None:
        self._server: ThreadedMotoServer | None = None
        self._port = 0

    def __repr__(self) -> str:
        return f"MotoSecretsServer(port={self._port}, running={self._server is not None})"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("moto server is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """The URL to give AWS clients as ``endpoint_url`` / ``AWS_ENDPOINT_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("moto server is already running")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        _, port = server.get_host_and_port()
        self._server, self._port = server, int(port)
        logger.debug("moto.started", port=self._port)

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        server.stop()
        self._server = None
        logger.debug("moto.stopped", port=self._port)

    def reset(self) -> None:
        """Forget every secret (and every other resource) moto holds."""
        url = f"{self.endpoint_url}/moto-api/reset"  # always http://127.0.0.1:<port>
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - scheme fixed above
        # Never through a proxy from the environment: the server is on loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=_RESET_TIMEOUT_S) as response:
            response.read()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
