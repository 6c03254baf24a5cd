"""Validate a real HTTP exchange against the service's served OpenAPI document (openapi-core)."""

from __future__ import annotations

import functools
import json

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse


def load(live_server: str) -> OpenAPI:
    """The document at /api/openapi.json, itself validated as it loads."""
    spec = requests.get(live_server + "/api/openapi.json", timeout=5)
    assert spec.status_code == 200
    return _validated(spec.text)


@functools.lru_cache(maxsize=4)
def _validated(document: str) -> OpenAPI:
    """One validation per document text: a second test served the same text has it already
    (the validation is most of a test's setup time)."""
    return OpenAPI.from_dict(json.loads(document))


def check(openapi: OpenAPI, response: requests.Response, valid_request: bool = True) -> None:
    """The request (when meant to be valid) and the response match the document; JSON body."""
    exchange = RequestsOpenAPIRequest(response.request)
    if valid_request:
        openapi.validate_request(exchange)
    openapi.validate_response(exchange, RequestsOpenAPIResponse(response))
    assert response.headers["Content-Type"] == "application/json"
