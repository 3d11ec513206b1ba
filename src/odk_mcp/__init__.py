"""odk-mcp: a field data-collection server for the ODK ecosystem."""

__version__ = "0.1.0"
