"""The delivery's HTTP transport: the local stack's reaches loopback only, without even a name lookup for any
other host; a deployed stack's posts wherever the endpoint is."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from functions.events.delivery import EndpointUnreachable
from functions.events.http_transport import Urllib3Transport


class _Accepting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host name this test's thread looks up (none may leave loopback). Other threads are left out: a
    background thread from an earlier test in this worker may still be connecting to its own loopback server."""
    looked_up: list[str] = []
    real = socket.getaddrinfo
    test_thread = threading.get_ident()

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == test_thread:
            looked_up.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return looked_up


@pytest.mark.parametrize("url", ["https://hooks.invalid/x", "https://10.0.0.1/x", "http://example.invalid:80/x"])
def test_the_local_transport_refuses_any_other_host_without_a_lookup(url: str, lookups: list[str]) -> None:
    with pytest.raises(EndpointUnreachable, match="NotLoopback"):
        Urllib3Transport(1.0, loopback_only=True).post(url, b"{}", {"Content-Type": "application/json"})
    assert lookups == []


def test_the_local_transport_posts_to_loopback(receiver: str, lookups: list[str]) -> None:
    assert Urllib3Transport(1.0, loopback_only=True).post(receiver, b"{}", {"Content-Type": "application/json"}) == 204
    assert set(lookups) <= {"127.0.0.1"}
