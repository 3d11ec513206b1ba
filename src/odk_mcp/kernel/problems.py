"""The catalogue of problems (numbered error codes) every entry point renders.

A `Problem` is the one error type business code raises for anything the caller did wrong
or that the server refuses. The integer part of the code is the HTTP status, the decimal
part identifies the problem (ODK Central's convention, so ODK clients recognise them).
Every code defined here is documented in docs/errors.md; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProblemType:
    """One entry of the catalogue: a code and its default message."""

    code: float
    name: str
    message: str

    @property
    def status(self) -> int:
        return int(self.code)


class Problem(Exception):
    """An error meant for the caller: rendered as `{message, code, details}`."""

    def __init__(
        self,
        kind: ProblemType,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.message = message or kind.message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def code(self) -> float:
        return self.kind.code

    @property
    def status(self) -> int:
        return self.kind.status


CATALOGUE: dict[str, ProblemType] = {}


def _define(code: float, name: str, message: str) -> ProblemType:
    kind = ProblemType(code, name, message)
    if name in CATALOGUE or any(k.code == code for k in CATALOGUE.values()):
        raise ValueError(f"duplicate problem {code} {name}")
    CATALOGUE[name] = kind
    return kind


UNPARSEABLE = _define(400.1, "unparseable", "Could not parse the given data as JSON.")
MISSING_PARAMETER = _define(400.2, "missingParameter", "A required parameter is missing.")
UNEXPECTED_ATTRIBUTE = _define(400.4, "unexpectedAttribute", "A passed parameter was not expected.")
INVALID_HEADER = _define(400.6, "invalidHeader", "A header did not match the expected format.")
UNEXPECTED_VALUE = _define(400.8, "unexpectedValue", "A parameter has an unexpected value.")
INVALID_DATA_TYPE = _define(400.11, "invalidDataTypeOfParameter", "A parameter has the wrong data type.")
VALUE_TOO_LONG = _define(400.13, "valueTooLong", "A value is too long for its field.")
PASSWORD_TOO_WEAK = _define(400.21, "passwordTooWeak", "The password does not meet the password policy.")
AUTHENTICATION_REQUIRED = _define(401.1, "authenticationRequired", "This resource requires authentication.")
AUTHENTICATION_FAILED = _define(
    401.2, "authenticationFailed", "Could not authenticate with the provided credentials."
)
HTTPS_ONLY = _define(401.3, "httpsOnly", "This authentication method is only available over HTTPS.")
INSUFFICIENT_RIGHTS = _define(
    403.1,
    "insufficientRights",
    "The authentication you provided does not have rights to perform that action.",
)
CSRF_FAILED = _define(
    403.2, "csrfFailed", "A cookie-authenticated change needs a matching CSRF token (X-CSRF-Token or __csrf)."
)
NOT_FOUND = _define(404.1, "notFound", "Could not find the resource you were looking for.")
METHOD_NOT_ALLOWED = _define(405.1, "methodNotAllowed", "This resource does not accept that HTTP method.")
UNIQUENESS_VIOLATION = _define(409.3, "uniquenessViolation", "A resource already exists with that value.")
PAYLOAD_TOO_LARGE = _define(413.1, "payloadTooLarge", "The request body is larger than this server accepts.")
UNSUPPORTED_MEDIA_TYPE = _define(
    415.1, "unsupportedMediaType", "The request body has a content type this resource does not accept."
)
TOO_MANY_LOGIN_ATTEMPTS = _define(
    429.1, "tooManyLoginAttempts", "Too many failed login attempts. Please wait before trying again."
)
RATE_LIMITED = _define(429.2, "rateLimited", "Too many requests. Please slow down.")
INTERNAL = _define(500.1, "internal", "An unknown internal problem has occurred. Please try again later.")
NOT_IMPLEMENTED = _define(501.1, "notImplemented", "The requested feature is not supported by this server.")
UNAVAILABLE = _define(503.1, "unavailable", "The server is not ready: its database cannot be reached.")
CALL_TIMED_OUT = _define(
    503.2, "callTimedOut", "The call took longer than the server allows and was stopped."
)

# Forms service.
XLSFORM_NOT_VALID = _define(
    400.15,
    "xlsformNotValid",
    "The given XLSForm file was not valid. Please see the error details for more information.",
)
FORM_WARNINGS = _define(
    400.16,
    "formWarnings",
    "The Form is valid, but with warnings. Please check the warnings and if they are acceptable resubmit with"
    " ?ignoreWarnings=true",
)
XFORM_NOT_VALID = _define(400.41, "xformNotValid", "The given XForm is not valid.")
DRAFT_ACCESS_FAILED = _define(
    404.4, "failedDraftAccess", "That draft testing link does not exist anymore or is no longer valid."
)
VERSION_CONFLICT = _define(
    409.6,
    "versionUniquenessViolation",
    "A published version of this form already has that version string. Re-request with ?version=xyz to set a"
    " new one.",
)
NO_PUBLISHED_VERSION = _define(
    409.7,
    "noPublishedVersion",
    "Could not delete the draft, because the form has not been published. Delete the whole form instead.",
)
CONVERSION_LIMITS = _define(
    422.1, "conversionLimitsExceeded", "The XLSForm could not be converted within the time and memory limits."
)

# Aggregation service: exports.
EXPORT_TOO_LARGE = _define(
    422.2, "exportTooLarge", "This export format cannot hold that many submissions; narrow the export."
)
EXPORT_NOT_READY = _define(
    409.31, "exportNotReady", "The export is not ready: see its status for progress or the reason it failed."
)

# Submissions service.
MISSING_MULTIPART_FIELD = _define(
    400.7, "missingMultipartField", "Required multipart POST field xml_submission_file missing."
)
EXPECTED_DEPRECATION = _define(
    400.19,
    "expectedDeprecation",
    "This PUT endpoint expects a deprecatedID metadata tag pointing at the current version instanceID.",
)
SUBMISSION_NOT_VALID = _define(400.42, "submissionNotValid", "The submission XML is not valid.")
DEPRECATED_ID_NOT_FOUND = _define(
    404.5,
    "deprecatedIdNotFound",
    "You tried to update a submission, but we can't find that submission to update.",
)
FORM_VERSION_NOT_FOUND = _define(
    404.6, "formVersionNotFound", "The form version specified in this submission does not exist."
)
XML_CONFLICT = _define(
    409.1,
    "xmlConflict",
    "A submission already exists with this ID, but with different XML. Resubmissions to attach additional"
    " multimedia must resubmit an identical xml_submission_file.",
)
NOT_ACCEPTING_SUBMISSIONS = _define(
    409.2,
    "notAcceptingSubmissions",
    "This form is not currently accepting submissions. Please talk to your program staff if this is"
    " unexpected.",
)
INSTANCE_ID_CONFLICT = _define(
    409.8,
    "instanceIdConflict",
    "You tried to update a submission, but the instanceID you provided already exists on this server.",
)
DEPRECATING_OLD_SUBMISSION = _define(
    409.9,
    "deprecatingOldSubmission",
    "You tried to update a submission, but the copy you were editing is now out of date. Please get the new"
    " version that has been submitted, and make your edits again.",
)
LAST_ADMINISTRATOR = _define(
    409.17,
    "lastAdministrator",
    "That would leave the server without an administrator. Make someone else an administrator first.",
)
SUBMISSION_DELETED = _define(
    409.16,
    "submissionDeleted",
    "A submission with this instanceID was deleted. Restore it, or submit with a new instanceID.",
)

# Aggregation service (OData feeds and summaries).
UNPARSEABLE_ODATA_EXPRESSION = _define(
    400.18, "unparseableODataExpression", "The OData expression you provided could not be parsed."
)
VALUE_OUT_OF_RANGE = _define(
    400.22, "valueOutOfRangeForType", "A provided value is out of range for its type."
)
PROPERTY_NOT_FOUND = _define(400.23, "propertyNotFound", "Could not find a property with that name.")
UNSUPPORTED_ODATA_SELECT_FIELD = _define(
    400.24,
    "unsupportedODataSelectField",
    "The given OData select property uses features not supported by this server.",
)
UNSUPPORTED_ODATA_EXPRESSION = _define(
    501.4,
    "unsupportedODataExpression",
    "The given OData filter expression uses features not supported by this server.",
)
UNSUPPORTED_ODATA_FIELD = _define(
    501.5,
    "unsupportedODataField",
    "The given OData expression references fields not supported by this server.",
)
UNSUPPORTED_ODATA_EXPAND = _define(
    501.6,
    "unsupportedODataExpandExpression",
    'The given OData expand expression is not supported by this server. Only "$expand=*" is supported.',
)
UNSUPPORTED_ODATA_SELECT_EXPAND = _define(
    501.11, "unsupportedODataSelectExpand", "This server doesn't support $select together with $expand."
)

# Entities service (ODK Central's codes).
INVALID_ENTITY_FORM = _define(
    400.25, "invalidEntityForm", "The entity definition within the form is invalid."
)
INVALID_ENTITY = _define(400.28, "invalidEntity", "The entity is invalid.")
PENDING_SUBMISSIONS = _define(
    400.29,
    "pendingSubmissions",
    "Submissions are waiting for approval to change entities: repeat with ?convert=true or ?convert=false.",
)
NO_CONFLICT_ENTITY = _define(400.32, "noConflictEntity", "The Entity doesn't have any conflict.")
ODATA_INVALID_SKIPTOKEN = _define(400.35, "odataInvalidSkiptoken", "Invalid $skiptoken.")
DATASET_NOT_FOUND = _define(
    404.7, "datasetNotFound", "The entity list named in the submission does not exist."
)
ENTITY_NOT_FOUND = _define(
    404.8, "entityNotFound", "The entity named in the submission does not exist in the entity list."
)
ENTITY_VERSION_NOT_FOUND = _define(
    404.9, "entityVersionNotFound", "The base version named in the submission does not exist for the entity."
)
ENTITY_DELETED = _define(404.11, "entityDeleted", "The entity named in the submission has been deleted.")
ENTITY_VERSION_CONFLICT = _define(
    409.15,
    "entityVersionConflict",
    "The baseVersion given is not the current version of the Entity. Correct the version number or pass"
    " ?force=true to update the Entity anyway.",
)
ENTITY_UUID_DELETED = _define(
    409.19,
    "entityUniquenessViolationWithDeleted",
    "The UUID(s) cannot be used because they are associated with deleted Entities.",
)

# Webhooks service.
DELIVERY_NOT_RETRIABLE = _define(
    409.21,
    "webhookDeliveryNotRetriable",
    "Only a failed or pending webhook delivery can be retried.",
)

# analytics
ANALYSIS_NOT_POSSIBLE = _define(
    400.61, "analysisNotPossible", "The data cannot be analysed as asked (see details.reason)."
)
ANALYSIS_NOT_READY = _define(
    409.32,
    "analysisNotReady",
    "The analysis is not finished: see its status for progress or the reason it failed.",
)
TEXT_MODEL_MISSING = _define(
    501.61,
    "textModelMissing",
    "Free-text themes need the optional text extra and its embedding model, which are not installed.",
)
