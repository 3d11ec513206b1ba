"""The EDMX `$metadata` document of an entity list (properties are strings, as in Central)."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
# lxml takes None as the key of the default namespace (its stubs say str).
DEFAULT_NS: dict[str, str] = {None: EDM}  # type: ignore[dict-item]
SYSTEM_TYPES = (
    ("createdAt", "Edm.DateTimeOffset"),
    ("creatorId", "Edm.String"),
    ("creatorName", "Edm.String"),
    ("updates", "Edm.Int64"),
    ("updatedAt", "Edm.DateTimeOffset"),
    ("version", "Edm.Int64"),
    ("conflict", "Edm.String"),
)


def _prop(parent: etree._Element, name: str, kind: str) -> None:
    etree.SubElement(parent, f"{{{EDM}}}Property", Name=name, Type=kind)


def edmx(dataset_name: str, odata_names: Sequence[str]) -> bytes:
    root = etree.Element(f"{{{EDMX}}}Edmx", nsmap={"edmx": EDMX}, Version="4.0")
    services = etree.SubElement(root, f"{{{EDMX}}}DataServices")
    system = etree.SubElement(
        services, f"{{{EDM}}}Schema", nsmap=DEFAULT_NS, Namespace="org.opendatakit.entity"
    )
    metadata = etree.SubElement(system, f"{{{EDM}}}ComplexType", Name="metadata")
    for name, kind in SYSTEM_TYPES:
        _prop(metadata, name, kind)
    namespace = f"org.opendatakit.user.{dataset_name}"
    user = etree.SubElement(services, f"{{{EDM}}}Schema", nsmap=DEFAULT_NS, Namespace=namespace)
    entity_type = etree.SubElement(user, f"{{{EDM}}}EntityType", Name="Entities")
    key = etree.SubElement(entity_type, f"{{{EDM}}}Key")
    etree.SubElement(key, f"{{{EDM}}}PropertyRef", Name="__id")
    _prop(entity_type, "__id", "Edm.String")
    _prop(entity_type, "label", "Edm.String")
    _prop(entity_type, "__system", "org.opendatakit.entity.metadata")
    for name in odata_names:
        _prop(entity_type, name, "Edm.String")
    container = etree.SubElement(user, f"{{{EDM}}}EntityContainer", Name=dataset_name)
    etree.SubElement(container, f"{{{EDM}}}EntitySet", Name="Entities", EntityType=f"{namespace}.Entities")
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True))
