"""What the local stack's HTTP servers and child processes share: a threaded loopback HTTP server
that hands every request to one function, and stopping a child process politely, then firmly."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HttpRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes
    client_ip: str


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay_seconds: float = 0.0  # hold the response back (a PSP whose reply the client never gets)


Respond = Callable[[HttpRequest], HttpResponse]


class _Handler(BaseHTTPRequestHandler):
    respond: Respond
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = type(self).respond(
            HttpRequest(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        )
        if response.delay_seconds:
            time.sleep(response.delay_seconds)
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timed out) and closed the connection

    # Every method a client may send reaches `respond` (which may answer 405), never http.server's 501.
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_QUERY = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    def __init__(self, respond: Respond, *, host: str, port: int, name: str) -> None:
        handler = type(f"{name}Handler", (_Handler,), {"respond": staticmethod(respond)})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name=name)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def stop_process(process: subprocess.Popen[Any], *, grace_seconds: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the grace period; always reaped."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
