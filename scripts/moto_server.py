"""Runs the moto server on 127.0.0.1:<port> until our parent goes away.

The test harness and the demo start this with a pipe on stdin; when the parent exits (even
on a crash or a killed test process) the pipe closes and this process exits with it, so no
emulator is ever left behind.

Requests are handled one at a time. moto's backends take no locks, so two concurrent
conditional writes could both pass their condition, which DynamoDB never allows; seatcap's
race tests must test seatcap, not the emulator's threads. Connections are still served on
threads, so a client's idle keep-alive connection never blocks another client.
"""

import os
import sys
import threading

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def one_request_at_a_time(app):
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # Drain the response inside the lock: the backend work happens as it is read.
            return list(app(environ, start_response))

    return serialized


def main() -> None:
    port = int(sys.argv[1])
    app = one_request_at_a_time(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"moto ready on 127.0.0.1:{port}", flush=True)
    sys.stdin.read()  # returns at EOF: the parent is gone
    os._exit(0)


if __name__ == "__main__":
    main()
