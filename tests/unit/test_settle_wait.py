"""`payments settle` waiting for its run: an API that never answers is reported as such, not as a run that
is still going, and a run the API does not know yet is waited for until the deadline."""

from __future__ import annotations

import socket
import threading
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from local_stack.commands.settle import RunNotFinished, wait_for_run


class _NotRecordedYet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()
        self.wfile.write(b'{"error": {"code": "resource_missing"}}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_without_the_run() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _NotRecordedYet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_api_that_never_answers_is_reported_with_its_error() -> None:
    state = {"api_url": f"http://127.0.0.1:{_closed_port()}", "api_key": "k"}
    with pytest.raises(RunNotFinished) as late:
        wait_for_run(state, "run_1", timeout=1.0)
    assert isinstance(late.value.unreachable, urllib.error.URLError)
    assert "refused" in str(late.value).lower()


def test_a_run_the_api_does_not_know_yet_is_waited_for_until_the_deadline(api_without_the_run: str) -> None:
    with pytest.raises(RunNotFinished) as late:
        wait_for_run({"api_url": api_without_the_run, "api_key": "k"}, "run_1", timeout=1.0)
    assert (late.value.unreachable, str(late.value)) == (None, "still RUNNING")
