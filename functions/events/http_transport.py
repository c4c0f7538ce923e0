"""The delivery's HTTP POST: one attempt (the queue retries), a hard timeout, no redirects followed (a
webhook URL must not bounce us elsewhere), and the answer's body never read. The local stack delivers to
loopback only: an endpoint elsewhere is unreachable without a lookup or a connection, so nothing run on a
laptop or in CI reaches another host."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3
from urllib3.util import Timeout

from functions.events.delivery import EndpointUnreachable
from functions.events.endpoints import LOOPBACK_HOSTS


class Urllib3Transport:
    def __init__(self, timeout_seconds: float, *, loopback_only: bool = False) -> None:
        self.timeout = Timeout(total=timeout_seconds)
        self.pool = urllib3.PoolManager(retries=False, timeout=self.timeout, num_pools=50, maxsize=10)
        self.loopback_only = loopback_only

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        if self.loopback_only and urlsplit(url).hostname not in LOOPBACK_HOSTS:
            raise EndpointUnreachable("NotLoopback")
        try:
            response = self.pool.request(
                "POST", url, body=body, headers=dict(headers), redirect=False, preload_content=False
            )
        except urllib3.exceptions.HTTPError as error:
            # The exception's type only: its text may quote the URL, which can carry a token of the receiver.
            raise EndpointUnreachable(type(error).__name__) from None
        status = int(response.status)
        response.close()
        return status
