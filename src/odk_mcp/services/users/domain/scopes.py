"""Scopes of API tokens: what an assistant holding a token may do, on top of the user's roles.

A scope never grants anything the user's roles do not: the services still authorize every
call against the user's grants. Scopes only narrow what a token can reach, so a token given
to an assistant for reading aggregates cannot read rows, see personal data, or change forms.
"""

from __future__ import annotations

READ = "read"  # projects, forms, schemas, aggregates
SUBMISSIONS = "submissions"  # submission rows, with sensitive fields redacted
PII = "pii"  # sensitive fields unredacted
REVIEW = "review"  # review states and comments
FORMS_WRITE = "forms.write"  # form drafts and publishing

ALL_SCOPES: tuple[str, ...] = (READ, SUBMISSIONS, PII, REVIEW, FORMS_WRITE)

DESCRIPTIONS: dict[str, str] = {
    READ: "List projects and forms, read form schemas and aggregates.",
    SUBMISSIONS: "Read submission rows; sensitive fields are redacted.",
    PII: "See sensitive fields (names, phone numbers, precise locations) unredacted.",
    REVIEW: "Set review states and comment on submissions.",
    FORMS_WRITE: "Create form drafts and publish them.",
}


def unknown_scopes(scopes: list[str]) -> list[str]:
    return sorted(set(scopes) - set(ALL_SCOPES))
