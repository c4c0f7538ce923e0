"""The delivery's HTTP POST: one attempt (the queue retries), a hard timeout, no redirects followed (a
webhook URL must not bounce us elsewhere), and the answer's body never read."""

from __future__ import annotations

from collections.abc import Mapping

import urllib3
from urllib3.util import Timeout

from functions.events.delivery import EndpointUnreachable


class Urllib3Transport:
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = Timeout(total=timeout_seconds)
        self.pool = urllib3.PoolManager(retries=False, timeout=self.timeout, num_pools=50, maxsize=10)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
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
