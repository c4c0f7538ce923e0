"""moto's server for the local stack, with DynamoDB's atomicity.

DynamoDB applies a conditional write or a transaction atomically: of two concurrent transactions whose
conditions both hold before either writes, one fails. moto's threaded server checks and writes without a
lock, so two concurrent deliveries of one message could both pass a "not applied yet" condition and
credit twice - a race AWS refuses. DynamoDB calls are therefore served one at a time here; every other
service is served as moto serves it."""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB_TARGET = "DynamoDB_20120810."  # the X-Amz-Target of every DynamoDB API call (not Streams)

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialDynamoDB:
    """WSGI middleware: DynamoDB requests one at a time, the whole response produced under the lock."""

    def __init__(self, app: Wsgi) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(DYNAMODB_TARGET):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, SerialDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
