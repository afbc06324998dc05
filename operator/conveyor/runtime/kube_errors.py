"""How the API server's refusals reach the operator: a few exception types, each a decision.

The official client raises one `ApiException` for every refusal; the
reconcilers need to tell apart the few that change what they do: the object
exists already (409: adopt it), it does not exist (404: it is gone, nothing
to do), the namespace is being deleted (nothing new can or need be made
there), a write this replica may not send (fenced: it is not surely the
leader), and any other refusal (`ApiError`), which keeps the API server's
own message and says whether a 403 is a policy's verdict on the object
(its own fault) or the operator's RBAC. `translate` makes one of these of
an `ApiException`; the fake API server raises the same types.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kubernetes.client.exceptions import ApiException


class ConflictError(Exception):
    """The object already exists (409)."""

    status = 409


class NotFoundError(Exception):
    """The object does not exist (404)."""

    status = 404


class FencedError(Exception):
    """Not sent: this replica may not write now (it is not, or no longer surely, the leader)."""


class ApiError(Exception):
    """Any other refusal, with the API server's own message."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def refused_by_policy(self) -> bool:
        """A 403 from an admission plugin or webhook (PodSecurity, LimitRanger, a policy
        engine): the object's own fault. Not a 403 of the operator's permissions (RBAC), nor
        of a full ResourceQuota, which pass."""
        return (
            self.status == 403
            and _RBAC_REFUSAL.search(self.message) is None
            and "exceeded quota" not in self.message
        )


class NamespaceTerminatingError(Exception):
    """The namespace is being deleted: nothing new can be created there, nor needs to be."""


_RBAC_REFUSAL = re.compile(r'(User|ServiceAccount) "[^"]*" cannot ')


def translate(error: ApiException) -> Exception:
    if error.status == 409:
        return ConflictError(str(error.reason))
    if error.status == 404:
        return NotFoundError(str(error.reason))
    status = _status(error)
    message = str(status.get("message") or error.reason)
    causes = [
        c.get("reason") or c.get("type") for c in (status.get("details") or {}).get("causes") or []
    ]
    if error.status == 403 and (
        "NamespaceTerminating" in causes or "because it is being terminated" in message
    ):
        return NamespaceTerminatingError(message)
    return ApiError(error.status, message)


def _status(error: ApiException) -> dict[str, Any]:
    """The Status object the API server sent, if it sent one."""
    try:
        status = json.loads(error.body or "")
    except (TypeError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}
