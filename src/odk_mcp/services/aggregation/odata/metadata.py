"""The service document and the EDMX metadata document of a form's feed, in ODK Central's
shapes: entity type `Submissions` (key `__id`, `__system` of complex type
`org.opendatakit.submission.metadata`), one entity type per repeat named
`Submissions.<path>` with its parent-join property, groups as complex types, nested repeats
as navigation properties. Built with lxml, so every name is escaped."""

from __future__ import annotations

from typing import Any

from lxml import etree

from odk_mcp.services.aggregation.domain.naming import identifier
from odk_mcp.services.aggregation.odata.model import FormModel, Node, Table, group_type_name

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
FQDN_ROOT = "org.opendatakit.user"
SYSTEM_TYPE = "org.opendatakit.submission.metadata"

TYPE_MAP = {
    "int": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "boolean": "Edm.Boolean",
    "geopoint": "Edm.GeographyPoint",
    "geotrace": "Edm.GeographyLineString",
    "geoshape": "Edm.GeographyPolygon",
    "date": "Edm.Date",
    "dateTime": "Edm.DateTimeOffset",
}
SYSTEM_PROPERTIES = (
    ("submissionDate", "Edm.DateTimeOffset"),
    ("updatedAt", "Edm.DateTimeOffset"),
    ("submitterId", "Edm.String"),
    ("submitterName", "Edm.String"),
    ("attachmentsPresent", "Edm.Int64"),
    ("attachmentsExpected", "Edm.Int64"),
    ("status", "org.opendatakit.submission.Status"),
    ("reviewState", "org.opendatakit.submission.ReviewState"),
    ("deviceId", "Edm.String"),
    ("edits", "Edm.Int64"),
    ("formVersion", "Edm.String"),
    ("deletedAt", "Edm.DateTimeOffset"),
)


def service_document(model: FormModel, service_url: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{service_url}/$metadata",
        "value": [{"name": name, "kind": "EntitySet", "url": name} for name in model.tables],
    }


def _schema(parent: etree._Element, namespace: str) -> etree._Element:
    nsmap: Any = {None: EDM}  # the default namespace (lxml's stubs do not type the None key)
    return etree.SubElement(parent, f"{{{EDM}}}Schema", {"Namespace": namespace}, nsmap=nsmap)


def _sub(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{EDM}}}{tag}", attrs)


def _properties(element: etree._Element, nodes: list[Node], fqdn: str) -> None:
    for node in nodes:
        if node.is_repeat:
            type_name = f"{fqdn}.{_entity_name_of(node)}"
            _sub(element, "NavigationProperty", Name=node.name, Type=f"Collection({type_name})")
        elif node.is_group:
            _sub(element, "Property", Name=node.name, Type=f"{fqdn}.{group_type_name(node)}")
        else:
            _sub(element, "Property", Name=node.name, Type=TYPE_MAP.get(node.type, "Edm.String"))


def _entity_name_of(node: Node) -> str:
    return "Submissions." + group_type_name(node)


def _groups(nodes: list[Node]) -> list[Node]:
    out: list[Node] = []
    for node in nodes:
        if node.is_group:
            out.append(node)
            out.extend(_groups(node.children))
    return out


def edmx(model: FormModel) -> bytes:
    fqdn = f"{FQDN_ROOT}.{identifier(model.xml_form_id)}"
    root = etree.Element(f"{{{EDMX}}}Edmx", {"Version": "4.0"}, nsmap={"edmx": EDMX})
    services = etree.SubElement(root, f"{{{EDMX}}}DataServices")

    system = _schema(services, "org.opendatakit.submission")
    metadata = _sub(system, "ComplexType", Name="metadata")
    for name, kind in SYSTEM_PROPERTIES:
        _sub(metadata, "Property", Name=name, Type=kind)
    status = _sub(system, "EnumType", Name="Status")
    for member in ("notDecrypted", "missingEncryptedFormData"):
        _sub(status, "Member", Name=member)
    review = _sub(system, "EnumType", Name="ReviewState")
    for member in ("hasIssues", "edited", "rejected", "approved"):
        _sub(review, "Member", Name=member)

    schema = _schema(services, fqdn)
    tables: list[Table] = list(model.tables.values())
    for table in tables:
        entity = _sub(schema, "EntityType", Name=table.name)
        key = _sub(entity, "Key")
        _sub(key, "PropertyRef", Name="__id")
        _sub(entity, "Property", Name="__id", Type="Edm.String")
        if table.repeat_path is None:
            _sub(entity, "Property", Name="__system", Type=SYSTEM_TYPE)
        else:
            _sub(entity, "Property", Name=table.parent_property or "", Type="Edm.String")
        _properties(entity, table.nodes, fqdn)
    for table in tables:
        for group in _groups(table.nodes):
            complex_type = _sub(schema, "ComplexType", Name=group_type_name(group))
            _properties(complex_type, group.children, fqdn)

    container = _sub(schema, "EntityContainer", Name=model.xml_form_id)
    for table in tables:
        entity_set = _sub(container, "EntitySet", Name=table.name, EntityType=f"{fqdn}.{table.name}")
        if table.repeat_path is None:
            _capabilities(entity_set)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _capabilities(entity_set: etree._Element) -> None:
    """What the root set supports, in the Capabilities vocabulary (as Central annotates it)."""
    _sub(
        entity_set,
        "Annotation",
        Term="Org.OData.Capabilities.V1.ConformanceLevel",
        EnumMember="Org.OData.Capabilities.V1.ConformanceLevelType/Minimal",
    )
    _sub(entity_set, "Annotation", Term="Org.OData.Capabilities.V1.BatchSupported", Bool="false")
    for term, prop in (
        ("CountRestrictions", "Countable"),
        ("FilterRestrictions", "Filterable"),
        ("SortRestrictions", "Sortable"),
        ("ExpandRestrictions", "Expandable"),
    ):
        annotation = _sub(entity_set, "Annotation", Term=f"Org.OData.Capabilities.V1.{term}")
        record = _sub(annotation, "Record")
        _sub(record, "PropertyValue", Property=prop, Bool="true")
