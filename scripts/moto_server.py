"""Runs the moto server on 127.0.0.1:<port> until our parent goes away.

The test harness and the demo start this with a pipe on stdin; when the parent exits (even
on a crash or a killed test process) the pipe closes and this process exits with it, so no
emulator is ever left behind.

Requests are handled one at a time. moto's backends take no locks, so two concurrent
conditional writes could both pass their condition, which DynamoDB never allows; seatcap's
race tests must test seatcap, not the emulator's threads. Connections are still served on
threads, so a client's idle keep-alive connection never blocks another client.

With authorization on (`/moto-api/reset-auth`), a form-encoded request (IAM, SNS, STS) is
checked against the body as the SDK sent it (see `sign_the_body_as_sent`): moto re-encodes
the parsed form with `+` for spaces where the SDK wrote `%20`, so any such call with a space
in a value (an SNS message, a policy description) failed its signature check.

TransactWriteItems is made cheap to roll back (see `roll_back_only_what_changed`): moto
deep-copies the whole table for every item of every transaction, and keeps every copy, so
its time and memory grow with the square of the ledger's size; at 10,000 principals the
emulator would swamp, and outgrow, what the scale benchmark measures.
"""

import copy
import os
import sys
import threading

from werkzeug.serving import make_server

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.iam.access_control import IAMRequestBase
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def roll_back_only_what_changed(transact_write_items):
    """moto's TransactWriteItems, rolled back item by item instead of table by table.

    moto deep-copies the whole table for every item of a transaction, to restore it if a
    condition fails, and keeps every copy for ever (it tracks each model instance it creates,
    for /moto-api/data.json): time and memory grow with the square of the ledger's size.
    Here the table "copy" is the table itself, and a copy of each item the transaction will
    touch is kept and put back on failure: that restores Put, Delete, and an Update, which
    edits the item object in place (metering's `ADD`).
    """

    def backup_is_the_table(table, memo):
        return table

    Table.__deepcopy__ = backup_is_the_table

    def key_of(table, op):
        attributes = op.get("Key") or op.get("Item") or {}
        hash_key = DynamoType(attributes[table.hash_key_attr])
        range_key = (
            DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
        )
        return hash_key, range_key

    def slot(table, hash_key, range_key):
        if range_key is None:
            return table.items.get(hash_key)
        return table.items.get(hash_key, {}).get(range_key)

    def restore(table, hash_key, range_key, previous):
        if range_key is None:
            if previous is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = previous
            return
        if previous is None:
            items = table.items.get(hash_key, {})
            items.pop(range_key, None)
            if not items:
                table.items.pop(hash_key, None)
        else:
            table.items[hash_key][range_key] = previous

    def patched(self, transact_items):
        saved = []
        for item in transact_items:
            op = next(iter(item.values()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            try:
                hash_key, range_key = key_of(table, op)
            except KeyError:
                continue  # moto refuses the request itself
            previous = copy.deepcopy(slot(table, hash_key, range_key))
            saved.append((table, hash_key, range_key, previous))
        try:
            return transact_write_items(self, transact_items)
        except Exception:
            for table, hash_key, range_key, previous in reversed(saved):
                restore(table, hash_key, range_key, previous)
            raise

    return patched


def sign_the_body_as_sent(create_aws_request):
    """moto's signature check, over a form body encoded the way the AWS SDKs encode it.

    moto rebuilds the request it checks from the parsed form, which botocore encodes with
    `quote_plus` (a space becomes `+`); the SDKs percent-encode every byte but `A-Za-z0-9-_.~`
    (a space becomes `%20`), so the payload hashes differ. Encoding the same fields, in the
    same order, the SDKs' way gives back the bytes that were signed.
    """
    from urllib.parse import quote, urlencode

    def patched(self):
        request = create_aws_request(self)
        if not self._body and isinstance(self._data, dict):
            request.data = urlencode(self._data, doseq=True, safe="", quote_via=quote)
        return request

    return patched


def one_request_at_a_time(app):
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # Drain the response inside the lock: the backend work happens as it is read.
            return list(app(environ, start_response))

    return serialized


def main() -> None:
    port = int(sys.argv[1])
    DynamoDBBackend.transact_write_items = roll_back_only_what_changed(
        DynamoDBBackend.transact_write_items
    )
    IAMRequestBase._create_aws_request = sign_the_body_as_sent(
        IAMRequestBase._create_aws_request
    )
    app = one_request_at_a_time(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"moto ready on 127.0.0.1:{port}", flush=True)
    sys.stdin.read()  # returns at EOF: the parent is gone
    os._exit(0)


if __name__ == "__main__":
    main()
