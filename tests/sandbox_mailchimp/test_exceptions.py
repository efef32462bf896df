"""The Mailchimp sandbox's error classes: one per documented error, rendered as problem+json.

The bodies sent over HTTP are pinned by the conformance suites (test_auth, test_audience_*, ...); these
tests pin the catalogue itself against the reference's glossary and the rendering contract.
"""

from __future__ import annotations

from typing import Any

import orjson
from oromc_sandbox.mailchimp import exceptions as exc
from starlette.requests import Request

# Mailchimp's error glossary (shared reference mailchimp-api.md §12.2, from the error docs page):
# name -> status. 426 Upgrade Required (TLS) has no name and no body we could serve.
GLOSSARY = {
    "BadRequest": 400,
    "InvalidAction": 400,
    "InvalidResource": 400,
    "JSONParseError": 400,
    "APIKeyMissing": 401,
    "APIKeyInvalid": 401,
    "Forbidden": 403,
    "UserDisabled": 403,
    "WrongDatacenter": 403,
    "ResourceNotFound": 404,
    "MethodNotAllowed": 405,
    "ResourceNestingTooDeep": 414,
    "InvalidMethodOverride": 422,
    "RequestedFieldsInvalid": 422,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ComplianceRelated": 503,
}


def _request() -> Request:
    req = Request({"type": "http", "method": "GET", "path": "/3.0/ping", "headers": []})
    req.state.request_id = "rid-1"
    return req


def _body(error: exc.ApiError) -> tuple[int, dict[str, str], dict[str, Any]]:
    resp = error.response(_request())
    return resp.status_code, dict(resp.headers), orjson.loads(bytes(resp.body))


def test_every_catalogue_error_renders_a_problem_document() -> None:
    for cls in exc.CATALOGUE:
        status, headers, body = _body(cls())
        assert status == cls.status_code
        assert headers["content-type"] == exc.PROBLEM_MEDIA
        assert headers["x-request-id"] == "rid-1"
        assert body == {
            "type": exc.ERROR_TYPE_URL,
            "title": cls.title_text,
            "status": cls.status_code,
            "detail": cls.default_detail,
            "instance": "rid-1",
        }


def test_slug_lookup_returns_the_class() -> None:
    for slug, (status, title, _detail) in exc.ERRORS.items():
        error = exc.ApiError.of(slug, "specific")
        assert type(error) is exc.BY_SLUG[slug]
        assert (error.status, error.title, error.detail) == (status, title, "specific")


def test_catalogue_matches_the_reference_glossary() -> None:
    assert {slug: status for slug, (status, _t, _d) in exc.ERRORS.items()} == GLOSSARY


def test_field_error_and_member_errors() -> None:
    _, _, body = _body(exc.FieldError("email_address", "bad"))
    assert body["title"] == "Invalid Resource"
    assert body["errors"] == [{"field": "email_address", "message": "bad"}]
    _, _, body = _body(exc.InvalidEmailError("x looks fake or invalid"))
    assert "errors" not in body
    for cls, title in (
        (exc.MemberExistsError, "Member Exists"),
        (exc.MemberInComplianceStateError, "Member In Compliance State"),
    ):
        status, _, body = _body(cls("a@b.org"))
        assert status == 400
        assert "type" not in body  # recorded bodies carry no `type`
        assert body["title"] == title
        assert body["detail"].startswith("a@b.org ")
    status, _, body = _body(exc.ForgottenEmailNotSubscribedError("a@b.org"))
    assert (status, body["title"], body["type"]) == (
        400,
        "Forgotten Email Not Subscribed",
        exc.ERROR_TYPE_URL,
    )


def test_method_not_allowed_carries_allow() -> None:
    status, headers, _ = _body(exc.MethodNotAllowedError(headers={"Allow": "GET, PUT"}))
    assert status == 405
    assert headers["allow"] == "GET, PUT"
