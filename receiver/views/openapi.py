"""The coverage API's OpenAPI 3.1 document, built in code next to what it describes.

Kept as data in Python rather than a YAML file so it ships with the package without
package-data rules and reuses the id pattern the views check. Schemas are closed
(`additionalProperties: false`): tests validate real responses against this document with
openapi-core, so a field the code adds without documenting it fails a test. The
`coverage.updated` push is described under `webhooks` (an OpenAPI 3.1 feature).
"""

from __future__ import annotations

import copy
from typing import Any

from ..creatoriq.checks import MESSAGES as CREATORIQ_PROBLEMS
from . import ops_openapi
from .openapi_schema import closed as _closed
from .openapi_schema import ref as _ref

ID_PATTERN = r"[A-Za-z0-9_-]{1,100}"

_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_STR = {"type": ["string", "null"]}
_TYPES = {"type": ["array", "null"], "items": {"type": "string"}}


_SCHEMAS: dict[str, Any] = {
    "Error": _closed({"error": {"type": "string"}, "detail": {"type": "string"}}, ["error"]),
    "LastEvent": _closed(
        {"id": {"type": "string"}, "type": {"type": "string"}, "created": {"type": "integer"}}
    ),
    "ObjectState": _closed(
        {
            "id": {"type": "string"},
            "status": _NULLABLE_STR,
            "effective_date": _NULLABLE_INT,
            "end_date": _NULLABLE_INT,
            "cancellation_date": _NULLABLE_INT,
            "coverage_types": _TYPES,
            "job": _NULLABLE_STR,
            "policy": _NULLABLE_STR,
            "quote": _NULLABLE_STR,
            "invoice": _NULLABLE_STR,
            "bind": {"type": ["boolean", "null"]},
            "step": _NULLABLE_STR,
            "filename": _NULLABLE_STR,
            "documents": {
                "type": "object",
                "description": "Certificate-of-insurance and policy "
                "PDF URLs (gl_coi_pdf_url, wc_coi_pdf_url, pdf_url)",
                "additionalProperties": {"type": "string", "pattern": "^https?://"},
            },
            "last_event": {"oneOf": [_ref("LastEvent"), {"type": "null"}]},
        }
    ),
    "HistoryEntry": _closed(
        {
            "event": {"type": "string"},
            "type": {"type": "string"},
            "created": {"type": "integer"},
            "kind": {"enum": ["application", "policy", "assignment", "certificate", "invoice"]},
            "object": {"type": "string"},
            "status": {"type": "string"},
            "previous": _NULLABLE_STR,
        }
    ),
    "CoveredBy": _closed(
        {
            "kind": {"enum": ["assignment", "policy"]},
            "id": {"type": "string"},
            "job": _NULLABLE_STR,
            "status": {"type": "string"},
            "effective_date": _NULLABLE_INT,
            "end_date": _NULLABLE_INT,
            "covered_until": {
                "type": ["integer", "null"],
                "description": "End of coverage: end_date, or the cancellation if "
                "earlier; null while open-ended",
            },
            "coverage_types": _TYPES,
            "policy": _NULLABLE_STR,
        }
    ),
    "CoveredNow": _closed(
        {
            "covered": {"type": "boolean"},
            "at": {"type": "integer"},
            "by": {"type": "array", "items": _ref("CoveredBy")},
        }
    ),
    "Coverage": _closed(
        {
            "contractor": {"type": "string"},
            "applications": {"type": "array", "items": _ref("ObjectState")},
            "policies": {"type": "array", "items": _ref("ObjectState")},
            "assignments": {"type": "array", "items": _ref("ObjectState")},
            "certificates": {"type": "array", "items": _ref("ObjectState")},
            "invoices": {"type": "array", "items": _ref("ObjectState")},
            "history": {"type": "array", "items": _ref("HistoryEntry")},
            "covered_now": _ref("CoveredNow"),
        }
    ),
    "CoverageAnswer": _closed(
        {
            "contractor": {"type": "string"},
            "job": {"type": "string"},
            "at": {"type": "integer"},
            "covered": {"type": "boolean"},
            "by": {"oneOf": [_ref("CoveredBy"), {"type": "null"}]},
        }
    ),
}
_ANY_TIME = {"type": "number", "description": "Unix seconds"}
_SCHEMAS["CreatorIQCreator"] = {
    "type": "object",
    "description": "A creator's CreatorIQ profile. Any field may be missing or of the wrong "
    "type: that is what is checked, and reported as a problem.",
    "properties": {
        "id": {"type": "string"},
        "email": {"type": "string"},
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "home_address": {
            "type": "object",
            "properties": {
                k: {"type": "string"} for k in ("line1", "city", "state", "postal_code", "country")
            },
        },
        "work_state": {"type": "string"},
        "work_country": {"type": "string"},
        "payment_amount": {"type": "integer", "description": "Integer cents, above zero"},
        "base_pay": {
            "type": "string",
            "description": "As typed in CreatorIQ: digits only (4500, not $4,500.00); optional",
        },
        "accepted_at": {**_ANY_TIME, "description": "When the creator was moved to Accepted"},
        "profile_updated_at": {
            **_ANY_TIME,
            "description": "Last update of the creator's personal data (email, address)",
        },
    },
}
_SCHEMAS["CreatorIQCampaign"] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "start_date": {**_ANY_TIME, "description": "Must be in the future"},
        "end_date": _ANY_TIME,
    },
}
_SCHEMAS["CreatorIQCheckRequest"] = {
    "type": "object",
    "required": ["creator", "campaign"],
    "properties": {"creator": _ref("CreatorIQCreator"), "campaign": _ref("CreatorIQCampaign")},
}
_SCHEMAS["CreatorIQProblem"] = _closed(
    {
        "code": {"enum": sorted(CREATORIQ_PROBLEMS)},
        "field": {
            "type": "string",
            "description": "Where the problem is, e.g. creator.home_address.state",
        },
        "message": {"type": "string", "description": "The fix, in plain words"},
    }
)
_SCHEMAS["CreatorIQCheck"] = _closed(
    {
        "ok": {"type": "boolean", "description": "True when there is no problem"},
        "problems": {"type": "array", "items": _ref("CreatorIQProblem")},
    }
)
_SCHEMAS["CoverageUpdated"] = _closed(
    {
        "type": {"const": "coverage.updated"},
        "timestamp": {"type": "string", "format": "date-time"},
        "data": _closed(
            {k: v for k, v in _SCHEMAS["Coverage"]["properties"].items() if k != "history"}
        ),
    }
)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_ID_PARAM = {"type": "string", "pattern": f"^{ID_PATTERN}$"}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Contractor coverage",
        "version": "1.0.0",
        "description": "Current 1099Policy coverage of a contractor, kept from webhook "
        "events that may arrive late, twice or out of order; and whether a CreatorIQ creator "
        "would sync to 1099Policy; and the operator's ops API under /api/ops (HTTP Basic, "
        "console users).",
    },
    "paths": {
        "/api/contractors/{contractor_id}/coverage": {
            "get": {
                "operationId": "getContractorCoverage",
                "summary": "Current coverage, or whether one job is covered at one moment",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "contractor_id", "in": "path", "required": True, "schema": _ID_PARAM},
                    {
                        "name": "job",
                        "in": "query",
                        "required": False,
                        "schema": _ID_PARAM,
                        "description": "A job id: answer whether it is covered at `at`.",
                    },
                    {
                        "name": "at",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 40},
                        "description": "Unix seconds or ISO-8601 (UTC if no zone); default "
                        "now. Only with `job`.",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Without `job`: everything current, plus "
                        "`covered_now`. With `job`: the answer.",
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [_ref("Coverage"), _ref("CoverageAnswer")]}
                            }
                        },
                    },
                    "400": _error("A malformed id, job or at, or at without job"),
                    "401": _error("No valid bearer token"),
                    "404": _error("No coverage is known for this contractor"),
                    "503": _error("Storage unavailable; retry"),
                },
            }
        },
        "/api/creatoriq/check": {
            "post": {
                "operationId": "checkCreatorIQCreator",
                "summary": "Would this creator sync from CreatorIQ to 1099Policy, and what to fix",
                "description": "The rules of the CreatorIQ setup guide: email; home address "
                "with a US state and country; US work state; payment amount above zero; Base "
                "Pay digits only; campaign start in the future; moved to Accepted only once "
                "complete, then personal data updated after acceptance (the sync's trigger). "
                "Ask before a rep presses Accepted: a creator not yet accepted is no problem.",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreatorIQCheckRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "The problems, each with its fix; ok when none",
                        "content": {"application/json": {"schema": _ref("CreatorIQCheck")}},
                    },
                    "400": _error("Not a JSON object, or creator or campaign not an object"),
                    "401": _error("No valid bearer token"),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenApiDocument",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
    "webhooks": {
        "coverage.updated": {
            "post": {
                "summary": "Sent to PLATFORM_CALLBACK_URL when a contractor's current "
                "coverage changes; signed with Standard Webhooks; the same "
                "webhook-id on every retry of one change.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CoverageUpdated")}},
                },
                "responses": {"2XX": {"description": "Accepted; anything else is retried"}},
            }
        }
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "console": {"type": "http", "scheme": "basic"},
        },
        "schemas": _SCHEMAS,
    },
}


_DOCUMENT["paths"].update(ops_openapi.PATHS)
_SCHEMAS.update(ops_openapi.SCHEMAS)


def document() -> dict[str, Any]:
    """A copy of the OpenAPI document (callers may not change the shared one)."""
    return copy.deepcopy(_DOCUMENT)
