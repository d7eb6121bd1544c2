"""moto server with DynamoDB's conditional writes made atomic, as they are in DynamoDB.

moto's server is threaded and its DynamoDB backend checks a condition, then writes, with no lock
between: two concurrent conditional PutItems can both succeed, which real DynamoDB never allows.
The idempotency tests rely on that guarantee, so the test peer must give it: every item
operation runs under one lock. Arguments are moto_server's.
"""
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.Lock()


def _atomic(name):
    original = getattr(DynamoDBBackend, name)

    def wrapped(self, *args, **kwargs):
        with _LOCK:
            return original(self, *args, **kwargs)

    setattr(DynamoDBBackend, name, wrapped)


for _name in ("put_item", "get_item", "update_item", "delete_item"):
    _atomic(_name)

if __name__ == "__main__":
    sys.exit(main())
