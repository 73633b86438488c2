"""What ``alembic upgrade`` did, in two lines: the login, the owner role, the revisions."""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.runtime.migration import MigrationInfo

__all__ = ["Report", "describe_step"]


@dataclass
class Report:
    """The login (Vault's user name, never its password), the role owning the objects, the run."""

    login: str = ""
    owner: str = ""
    ran: list[str] = field(default_factory=list)
    now_at: tuple[str, ...] = ()
    heads: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """What to print once the migrations committed."""
        at = ", ".join(self.now_at) or "base"
        if self.ran:
            done = f"ran {', '.join(self.ran)}; now at {at}"
        elif self.now_at == self.heads:
            done = f"already at head {at}"
        else:
            done = f"at {at}; nothing ran"
        return [
            f"alembic: logged in to the database as {self.login}, objects owned by {self.owner}",
            f"alembic: {done}",
        ]


def describe_step(step: MigrationInfo) -> str:
    """A revision that ran: its id, marked when it was a downgrade."""
    if step.is_upgrade:
        return str(step.up_revision_id)
    return f"{step.up_revision_id} (downgrade)"
