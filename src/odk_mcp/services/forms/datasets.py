"""Entity lists as form attachments: the port through which forms serve them.

A form that expects a data file `<list>.csv` (e.g. from `select_one_from_file`) gets the
entity list of that name in its project, unless a file was uploaded for that attachment (an
upload wins, as in Central). Forms know nothing of entities: the composition root injects an
implementation of `DatasetAttachments` (the entities service provides one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from odk_mcp.kernel.actor import Actor
from odk_mcp.services.forms.views import AttachmentView


@dataclass(frozen=True)
class LinkedDataset:
    """An entity list serving an attachment: its file name and a hash that changes with it."""

    filename: str
    md5: str


class DatasetAttachments(Protocol):
    async def linked(
        self, project_id: int, filenames: Sequence[str], actor: Actor | None = None
    ) -> dict[str, LinkedDataset]:
        """The entity lists of the project named by these `<name>.csv` file names (as `actor`
        receives them: an owner-only list gives a collector only the entities they created)."""
        ...

    def csv(self, project_id: int, filename: str, actor: Actor | None = None) -> AsyncIterator[bytes]:
        """The list's CSV (`name,label,__version,<properties>`) as `actor` receives it, streamed."""
        ...


async def link_datasets(
    port: DatasetAttachments | None,
    project_id: int,
    views: list[AttachmentView],
    actor: Actor | None = None,
) -> list[AttachmentView]:
    """Attachments with the missing `.csv` files that entity lists provide filled in."""
    wanted = [v.name for v in views if not v.exists and v.type == "file" and v.name.endswith(".csv")]
    if port is None or not wanted:
        return views
    linked = await port.linked(project_id, wanted, actor)
    return [
        replace(v, md5=linked[v.name].md5, content_type="text/csv", dataset=True) if v.name in linked else v
        for v in views
    ]
