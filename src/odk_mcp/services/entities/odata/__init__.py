"""The OData feed of an entity list: service document, $metadata and the Entities set."""
