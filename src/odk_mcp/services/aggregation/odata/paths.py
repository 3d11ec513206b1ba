"""The resource path after `….svc/`: a table (`Submissions`, `Submissions.hh.member`), one
submission (`Submissions('uuid:…')`) or a repeat table under it, possibly through repeat
instances (`Submissions('uuid:…')/hh/member('<id>')/visit`), as ODK Central addresses them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

_SEGMENT = re.compile(r"^([^(]+)(?:\('([^']*)'\))?$")


@dataclass(frozen=True)
class ResourcePath:
    table: str  # dotted table name, e.g. `Submissions.hh.member`
    instance_id: str | None  # the submission addressed by `Submissions('…')`
    parent_id: str | None  # the `__id` of the repeat row addressed last, if any
    parent_property: str | None  # the join property that id is found in (`__Submissions-hh-member-id`)


def parse_path(path: str) -> ResourcePath:
    """Parse a resource path; 404.1 for anything that is not one."""
    segments = [unquote(s) for s in path.strip("/").split("/")]
    if not segments or segments == [""]:
        raise Problem(problems.NOT_FOUND)
    names: list[str] = []
    instance_id: str | None = None
    parent_id: str | None = None
    parent_names: list[str] = []
    for index, segment in enumerate(segments):
        match = _SEGMENT.match(segment)
        if match is None:
            raise Problem(problems.NOT_FOUND)
        name, key = match.group(1), match.group(2)
        if index == 0 and "." in name and len(segments) > 1:
            raise Problem(problems.NOT_FOUND)
        names.append(name)
        if key is not None:
            if index == 0:
                instance_id = key
            else:
                parent_id = key
                parent_names = list(names)
    if names[0].split(".")[0] != "Submissions" or (instance_id is None and len(names) > 1):
        raise Problem(problems.NOT_FOUND)
    if instance_id is not None and len(names) == 1 and names[0] != "Submissions":
        raise Problem(problems.NOT_FOUND)
    table = ".".join(names)
    parent_property = f"__{'-'.join(parent_names)}-id" if parent_id is not None else None
    return ResourcePath(table, instance_id, parent_id, parent_property)
