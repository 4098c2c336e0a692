"""Removing a member: one step for the API and the console. Their key stops working at once; what
they contributed is flagged (withheld until an owner adopts or replaces it), not deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import Store
    from .credentials import Credentials
    from .vault import Vault


class CannotRemove(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def remove_member(store: Store, vault: Vault, credentials: Credentials, member_id: str, by: dict) -> int:
    """Revoke ``member_id``'s key on behalf of ``by`` (an API key row); how many credentials were flagged."""
    if member_id == by["id"]:
        raise CannotRemove(409, "self_removal", "an owner cannot revoke the key it is using")
    member = next((m for m in await store.list_api_keys() if m["id"] == member_id), None)
    if member is None or not await vault.revoke_api_key(member_id):
        raise CannotRemove(404, "not_found", f"no member {member_id}")
    why = f"its contributor {member['name']} was removed from the team by {by['name']}"
    return await credentials.flag_contributor(member_id, why)
