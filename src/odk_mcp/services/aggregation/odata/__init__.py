"""OData v4 feeds over the read model (ODK Central's Minimal-conformance service, extended
with filters on any field, $orderby and keyset paging)."""
