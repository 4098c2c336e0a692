"""Who may call what: every route's roles in one table, checked by the auth middleware.

Roles: ``owner`` (everything), ``contributor`` (run and cancel executions, contribute credentials and
manage their own, assign their own to personas, see the team's credential names, read the rest) and
``viewer`` (read status, executions, workers and personas). Keys made when
the only roles were owner and ``member`` keep working: a member is a contributor. A route missing from
the table is the owner's alone, so a new endpoint is never open by accident (a test holds the table to
the routes).
"""

from __future__ import annotations

ROLES = ("owner", "contributor", "viewer")
ALIASES = {"member": "contributor"}
EVERYONE = frozenset(ROLES)
RUNNERS = frozenset({"owner", "contributor"})
OWNERS = frozenset({"owner"})

POLICY: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/execute"): RUNNERS,
    ("GET", "/api/executions"): EVERYONE,
    ("GET", "/api/executions/{id}"): EVERYONE,
    ("GET", "/api/executions/{id}/stream"): EVERYONE,
    ("POST", "/api/executions/{id}/cancel"): RUNNERS,
    ("GET", "/api/workers"): EVERYONE,
    ("GET", "/api/usage"): EVERYONE,
    ("GET", "/api/personas"): EVERYONE,
    ("GET", "/api/personas/{id}"): EVERYONE,
    ("PUT", "/api/personas/{id}"): OWNERS,
    ("DELETE", "/api/personas/{id}"): OWNERS,
    # a contributor only their own credentials (checked by the handler: the credential's contributor)
    ("PUT", "/api/personas/{id}/credentials/{name}"): RUNNERS,
    ("DELETE", "/api/personas/{id}/credentials/{name}"): RUNNERS,
    ("GET", "/api/token"): EVERYONE,
    ("PUT", "/api/token"): OWNERS,
    ("DELETE", "/api/token"): OWNERS,
    ("POST", "/api/oauth/authorize"): OWNERS,
    ("POST", "/api/oauth/callback"): OWNERS,
    ("GET", "/api/credentials"): RUNNERS,
    ("PUT", "/api/credentials/{name}"): RUNNERS,  # a contributor: new names and their own
    ("DELETE", "/api/credentials/{name}"): RUNNERS,  # a contributor: their own
    ("POST", "/api/credentials/{name}/adopt"): OWNERS,
    ("POST", "/api/worker-tokens"): OWNERS,
    ("GET", "/api/team"): OWNERS,
    ("POST", "/api/team"): OWNERS,
    ("DELETE", "/api/team/{id}"): OWNERS,
    ("GET", "/api/capacity"): OWNERS,  # a scaling controller runs with an owner's key
    ("PUT", "/api/capacity/lease"): OWNERS,
    ("DELETE", "/api/capacity/lease"): OWNERS,
    ("GET", "/api/worker-time"): OWNERS,
    ("GET", "/api/dead-letters"): RUNNERS,
    ("POST", "/api/dead-letters/retry"): RUNNERS,  # a retry is an execution, which runners may start
    ("POST", "/api/dead-letters/discard"): OWNERS,
    ("GET", "/api/invites"): OWNERS,
    ("POST", "/api/invites"): OWNERS,
    ("DELETE", "/api/invites/{id}"): OWNERS,
}


def role_of(stored: str) -> str:
    return ALIASES.get(stored, stored)


def allowed(stored_role: str, method: str, route: str) -> bool:
    """May a key of ``stored_role`` call ``method route`` (the route's template, not the path)?"""
    method = "GET" if method == "HEAD" else method
    return role_of(stored_role) in POLICY.get((method, route), OWNERS)
