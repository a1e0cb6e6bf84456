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

Three more of moto's costs grow with the ledger and not with seatcap's calls, and are cut
without changing any answer (each function says why its answer is the same): the service a
host names is found once (`find_each_backend_once`), an item's size is summed once
(`size_each_item_once`), and Query's sorts compare plain values (`sort_by_plain_values`).
On the 10,000-principal rollover they were over half of the emulator's time.
"""

import copy
import os
import sys
import threading
import time

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


def find_each_backend_once():
    """moto's routing, remembered: which service a request's host names never changes.

    For every request moto lists its own package directory (an `isdir` per service) and
    then tries each service's URL patterns in turn, twice when the host is a bare
    `127.0.0.1:<port>`; on the scale benchmark that was an eighth of the emulator's time.
    """
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    find = DomainDispatcherApplication.get_backend_for_host
    found = {}

    def remembered(self, host):
        if host not in found:
            found[host] = find(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = remembered


def size_each_item_once():
    """moto's Item, with the 400 KB size check made once per item instead of per attribute.

    moto re-sums the size of every attribute already set each time it sets one, so writing
    an item costs the square of its attribute count (a ledger intent holds nested copies of
    the state). Sizes are never negative, so the whole item is over the limit exactly when
    some attribute-by-attribute prefix of it is: one check of the whole gives the same answer.
    """
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def init(self, hash_key, range_key, attrs):
        self.hash_key = hash_key
        self.range_key = range_key
        checked = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(checked)
        for key, value in attrs.items():
            dict.__setitem__(checked, key, DynamoType(value))
        if sum(bytesize(key) + value.size() for key, value in checked.items()) > 405000:
            raise ItemSizeTooLarge
        self.attrs = checked

    Item.__init__ = init


def sort_by_plain_values():
    """moto's Query, with its sorts keyed by plain values instead of DynamoType objects.

    Every Query sorts the whole table (and, on an index, the items that match again) with
    keys made of DynamoType objects, whose comparisons recompute Python values on every
    call: three quarters of a status-index page's time at 10,000 principals. A key
    attribute has one type per table, and DynamoType orders by `cast_value` alone, so
    sorting by `cast_value` gives the same order, computed once per item.
    """
    from moto.dynamodb.models.table import Table

    def plain(value):
        # `cast_value` is the value itself for strings and binaries (every key here).
        return value.value if value.type in ("S", "B") else value.cast_value

    def all_items(self):
        items = []
        for hash_set in self.items.values():
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)
        return sorted(
            items,
            key=lambda x: (plain(x.hash_key), plain(x.range_key))
            if x.range_key
            else plain(x.hash_key),
        )

    def sorted_items(self, hash_key_attrs, range_key_attrs, items):
        attrs_to_sort_by = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda x: tuple(plain(x.attrs[key]) for key in attrs_to_sort_by))
        return items

    Table.all_items = all_items
    Table.sorted_items = sorted_items


def one_request_at_a_time(app, trace_path=None):
    """The app behind one lock; with `trace_path`, one line per request appended to it:
    operation (DynamoDB's target, else the host), request bytes, response bytes, seconds
    inside the lock. Summing the seconds per operation shows where the emulator's time goes
    in a benchmark (`SEATCAP_MOTO_TRACE=/tmp/moto.tsv ./scripts/bench-scale 2000`)."""
    lock = threading.Lock()
    trace = open(trace_path, "a", buffering=1) if trace_path else None

    def serialized(environ, start_response):
        with lock:
            started = time.perf_counter()
            # Drain the response inside the lock: the backend work happens as it is read.
            body = list(app(environ, start_response))
            if trace:
                operation = environ.get("HTTP_X_AMZ_TARGET") or environ.get("HTTP_HOST")
                request_bytes = environ.get("CONTENT_LENGTH") or 0
                response_bytes = sum(len(chunk) for chunk in body)
                seconds = time.perf_counter() - started
                trace.write(f"{operation}\t{request_bytes}\t{response_bytes}\t{seconds:.6f}\n")
            return body

    return serialized


def main() -> None:
    port = int(sys.argv[1])
    DynamoDBBackend.transact_write_items = roll_back_only_what_changed(
        DynamoDBBackend.transact_write_items
    )
    IAMRequestBase._create_aws_request = sign_the_body_as_sent(
        IAMRequestBase._create_aws_request
    )
    find_each_backend_once()
    size_each_item_once()
    sort_by_plain_values()
    app = one_request_at_a_time(
        DomainDispatcherApplication(create_backend_app), os.environ.get("SEATCAP_MOTO_TRACE")
    )
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"moto ready on 127.0.0.1:{port}", flush=True)
    sys.stdin.read()  # returns at EOF: the parent is gone
    os._exit(0)


if __name__ == "__main__":
    main()
