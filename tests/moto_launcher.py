"""``moto_server`` with the fixes a whole ``terraform apply`` of terraform/ needs, for tests only.

    python tests/moto_launcher.py -H 127.0.0.1 -p 5000 [--ssl-cert CERT --ssl-key KEY]

Three bugs of moto 5.2.5 (the newest) in how it reads bucket policies, each patched here for what it
breaks and nothing else; every policy is stored and served unchanged:

- **Conditions.** moto evaluates only ``StringEquals``: a ``Bool`` condition such as our buckets'
  ``DenyInsecureTransport`` (``aws:SecureTransport`` is ``false``) counts as always true, and a
  statement whose condition does not hold counts as a match for its effect instead of not
  applying. So every object request to such a bucket was refused (403) over HTTP and HTTPS
  alike. Here ``Bool`` is evaluated, ``aws:SecureTransport`` is what this server speaks
  (``true`` with ``--ssl-cert``), and a statement whose condition does not hold does not apply.
- **Logging.** ``PutBucketLogging`` reads every statement of the target bucket's policy as
  ``stmt["Principal"].get("Service")``, so a statement with ``"Principal": "*"`` (valid IAM, ours)
  made it fail with a 500: such statements are hidden from that one check.
- **Delete markers.** Deleting the last version of a key whose versions include a delete marker
  (what ``force_destroy`` does to a versioned bucket) fails with a 500: moto disposes of every
  version of the key and a delete marker has no ``dispose``. It holds no data: disposing of it
  is doing nothing.

And one of werkzeug's development server, which ``moto_server`` runs on: over TLS it completes
each connection's handshake in its one accepting thread, so a client that connects and does not
finish its handshake stalls every other connection, old and new, until it goes. Here the
handshake happens in each connection's own thread.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from moto.iam import policy_conditions
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3.models import FakeBucket, FakeDeleteMarker
from moto.server import main
from werkzeug import serving

SECURE_TRANSPORT = (
    "true" if any(a in sys.argv for a in ("--ssl-cert", "-c", "--ssl", "-s")) else "false"
)


def _bool_equals(expected: list[str] | str, actual: str) -> bool:
    wanted = [expected] if isinstance(expected, str) else expected
    return str(actual).lower() in {str(value).lower() for value in wanted}


policy_conditions.CONDITION_OPERATIONS["Bool"] = _bool_equals
_statement_permission = IAMPolicyStatement.is_action_permitted


def _is_action_permitted(
    self: IAMPolicyStatement,
    action: str,
    resource: str = "*",
    principal: str | None = None,
    incoming_condition_values: dict[str, str] | None = None,
) -> PermissionResult:
    values = {"aws:SecureTransport": SECURE_TRANSPORT, **(incoming_condition_values or {})}
    if self._statement.get("Condition") and not self._check_conditions(values):
        return PermissionResult.NEUTRAL  # a statement whose condition does not hold does not apply
    return _statement_permission(self, action, resource, principal, values)


IAMPolicyStatement.is_action_permitted = _is_action_permitted  # type: ignore[method-assign]

_check_log_permissions = FakeBucket._log_permissions_enabled_policy


def _log_permissions_enabled_policy(target_bucket: Any, target_prefix: str | None) -> bool:
    if not target_bucket.policy:
        return bool(_check_log_permissions(target_bucket, target_prefix))
    policy = json.loads(target_bucket.policy.decode())
    policy["Statement"] = [
        statement
        for statement in policy["Statement"]
        if isinstance(statement.get("Principal", {}), dict)
    ]
    shadow = copy.copy(target_bucket)
    shadow.policy = json.dumps(policy).encode()
    return bool(_check_log_permissions(shadow, target_prefix))


FakeBucket._log_permissions_enabled_policy = staticmethod(_log_permissions_enabled_policy)  # type: ignore[method-assign]

FakeDeleteMarker.dispose = lambda self, garbage=False: None  # type: ignore[attr-defined]

_server_init = serving.BaseWSGIServer.__init__


def _handshake_in_each_connection_thread(self: Any, *args: Any, **kwargs: Any) -> None:
    _server_init(self, *args, **kwargs)
    if self.ssl_context is not None:  # accept() hands over the socket, its thread shakes hands
        self.socket.do_handshake_on_connect = False


serving.BaseWSGIServer.__init__ = _handshake_in_each_connection_thread  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
