"""The problem types OData requests raise (ODK Central's codes, from the kernel catalogue)."""

from odk_mcp.kernel import problems

UNPARSEABLE_FILTER = problems.UNPARSEABLE_ODATA_EXPRESSION
UNSUPPORTED_EXPRESSION = problems.UNSUPPORTED_ODATA_EXPRESSION
UNSUPPORTED_FIELD = problems.UNSUPPORTED_ODATA_FIELD
