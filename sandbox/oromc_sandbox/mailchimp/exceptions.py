"""Mailchimp's documented errors, one exception class each, rendered as problem+json.

Mailchimp answers every error with a Problem Detail Document (reference §12.2, OpenAPI `ProblemDetailDocument`):
`type` (the error-docs URL), `title`, `status`, `detail`, `instance` (= `X-Request-Id`), and `errors`
(field errors) for Invalid Resource. Raise a class from anywhere inside an `@mc_endpoint` handler (or a
model call it makes); the wrapper renders it. `ERRORS` (slug -> status, title, detail) is derived from
the classes for the code that still names an error by its slug (`ApiError.of`, `common.error`).

Imports nothing else of the package (models, responses and `common` all import this module).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

ERROR_TYPE_URL = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_MEDIA = "application/problem+json; charset=utf-8"


def request_id(request: Request) -> str:
    """The request's id (set by the core middleware; generated here when absent)."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = str(uuid.uuid4())
        request.state.request_id = rid
    return str(rid)


def response_headers(request: Request, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The headers every Mailchimp answer carries (`X-Request-Id`, `Server: openresty`, `Vary`)."""
    headers = {
        "X-Request-Id": request_id(request),
        "Server": "openresty",
        "Vary": "Accept-Encoding",
    }
    if extra:
        headers.update(extra)
    return headers


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    type_slug: str | None = None,
    *,
    omit_type: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """A Problem Detail Document (`application/problem+json; charset=utf-8`).

    `instance` equals the `X-Request-Id` header. `type` is Mailchimp's error-docs URL (with
    `#<type_slug>` appended when given); `omit_type=True` reproduces bodies recorded without `type`
    (Member Exists, Member In Compliance State).
    """
    body: dict[str, Any] = {}
    if not omit_type:
        body["type"] = ERROR_TYPE_URL + (f"#{type_slug}" if type_slug else "")
    body.update(
        {"title": title, "status": status, "detail": detail, "instance": request_id(request)}
    )
    if errors is not None:
        body["errors"] = errors
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=response_headers(request, headers),
        media_type=PROBLEM_MEDIA,
    )


class ApiError(Exception):
    """A Mailchimp error answer. Subclasses fix `status`/`title`/`default_detail`.

    The generic constructor (`ApiError(status, title, detail, ...)`) stays for code that builds an
    ad-hoc error; prefer a subclass below.
    """

    slug: ClassVar[str] = ""
    status_code: ClassVar[int] = 500
    title_text: ClassVar[str] = "Internal Server Error"
    default_detail: ClassVar[str] = "An unexpected internal error has occurred."
    omits_type: ClassVar[bool] = False

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        omit_type: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.omit_type = omit_type
        self.headers = headers

    @classmethod
    def of(
        cls, slug: str, detail: str | None = None, errors: list[dict[str, Any]] | None = None
    ) -> ApiError:
        """The catalogue error named `slug` (see `ERRORS`), optionally with a specific detail."""
        return BY_SLUG[slug](detail, errors)

    def response(self, request: Request) -> Response:
        return problem(
            request,
            self.status,
            self.title,
            self.detail,
            self.errors,
            omit_type=self.omit_type,
            headers=self.headers,
        )


class CatalogueError(ApiError):
    """An error of Mailchimp's error catalogue: constructed with an optional detail and field errors."""

    def __init__(
        self,
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            self.status_code,
            self.title_text,
            detail or self.default_detail,
            errors,
            omit_type=self.omits_type,
            headers=headers,
        )


# --------------------------------------------------------------------------- 400


class BadRequestError(CatalogueError):
    slug = "BadRequest"
    status_code = 400
    title_text = "Bad Request"
    default_detail = "Your request could not be processed."


class InvalidActionError(CatalogueError):
    slug = "InvalidAction"
    status_code = 400
    title_text = "Invalid Action"
    default_detail = "The action requested was not valid for this resource."


class InvalidResourceError(CatalogueError):
    """400 Invalid Resource; the body has `errors` only when field errors are given."""

    slug = "InvalidResource"
    status_code = 400
    title_text = "Invalid Resource"
    default_detail = (
        "The resource submitted could not be validated. For field-specific details, see the "
        "'errors' array."
    )


class FieldError(InvalidResourceError):
    """400 Invalid Resource naming one field (generic detail unless one is given)."""

    def __init__(self, field: str, message: str, detail: str | None = None) -> None:
        super().__init__(detail, [{"field": field, "message": message}])


class JSONParseError(CatalogueError):
    slug = "JSONParseError"
    status_code = 400
    title_text = "JSON Parse Error"
    default_detail = "We encountered an unspecified JSON parsing error."


# --------------------------------------------------------------------------- 401 / 403


class APIKeyMissingError(CatalogueError):
    slug = "APIKeyMissing"
    status_code = 401
    title_text = "API Key Missing"
    default_detail = "Your request did not include an API key."


class APIKeyInvalidError(CatalogueError):
    slug = "APIKeyInvalid"
    status_code = 401
    title_text = "API Key Invalid"
    default_detail = (
        "Your API key may be invalid, or you've attempted to access the wrong datacenter."
    )


class ForbiddenError(CatalogueError):
    slug = "Forbidden"
    status_code = 403
    title_text = "Forbidden"
    default_detail = "You are not permitted to access this resource."


class UserDisabledError(CatalogueError):
    slug = "UserDisabled"
    status_code = 403
    title_text = "User Disabled"
    default_detail = "This account has been disabled."


class WrongDatacenterError(CatalogueError):
    slug = "WrongDatacenter"
    status_code = 403
    title_text = "Wrong Datacenter"
    default_detail = "The API key provided is linked to a different data center."


# --------------------------------------------------------------------------- 404 / 405 / 414 / 422


class ResourceNotFoundError(CatalogueError):
    slug = "ResourceNotFound"
    status_code = 404
    title_text = "Resource Not Found"
    default_detail = "The requested resource could not be found."


class MethodNotAllowedError(CatalogueError):
    """405; pass `headers={"Allow": ...}` (the methods the resource accepts)."""

    slug = "MethodNotAllowed"
    status_code = 405
    title_text = "Method Not Allowed"
    default_detail = (
        "The requested method and resource are not compatible. See the Allow header for this "
        "resource's available methods."
    )


class ResourceNestingTooDeepError(CatalogueError):
    slug = "ResourceNestingTooDeep"
    status_code = 414
    title_text = "Resource Nesting Too Deep"
    default_detail = "The sub-resource requested is nested too deeply."


class InvalidMethodOverrideError(CatalogueError):
    slug = "InvalidMethodOverride"
    status_code = 422
    title_text = "Invalid Method Override"
    default_detail = "You can only use the X-HTTP-Method-Override header with the POST method."


class RequestedFieldsInvalidError(CatalogueError):
    slug = "RequestedFieldsInvalid"
    status_code = 422
    title_text = "Requested Fields Invalid"
    default_detail = "The fields requested from this resource are invalid."


# --------------------------------------------------------------------------- 429 / 500


class TooManyRequestsError(CatalogueError):
    slug = "TooManyRequests"
    status_code = 429
    title_text = "Too Many Requests"
    default_detail = "You have exceeded the limit of 10 simultaneous connections."


class InternalServerError(CatalogueError):
    slug = "InternalServerError"
    status_code = 500
    title_text = "Internal Server Error"
    default_detail = "An unexpected internal error has occurred."


class ComplianceRelatedError(CatalogueError):
    slug = "ComplianceRelated"
    status_code = 503
    title_text = "Compliance Related"
    default_detail = "This method has been disabled."


# --------------------------------------------------------------------------- member errors (400)


class MemberExistsError(ApiError):
    """POST of an address already on the list (recorded body has no `type`)."""

    def __init__(self, email: str) -> None:
        super().__init__(
            400,
            "Member Exists",
            f"{email} is already a list member. Use PUT to insert or update list members.",
            omit_type=True,
        )


class BatchMemberExistsError(ApiError):
    """`POST /lists/{id}` (batch subscribe) of an existing member without `update_existing`."""

    def __init__(self, email: str) -> None:
        super().__init__(
            400,
            "Member Exists",
            f"{email} is already a list member, do you want to update? please "
            "provide update_existing:true in the request body",
        )


class MemberInComplianceStateError(ApiError):
    """Subscribing an address that unsubscribed, bounced or is under review (no `type`)."""

    def __init__(self, email: str) -> None:
        super().__init__(
            400,
            "Member In Compliance State",
            f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review "
            "and cannot be subscribed.",
            omit_type=True,
        )


class ForgottenEmailNotSubscribedError(ApiError):
    """Re-importing an address that was permanently deleted."""

    def __init__(self, email: str) -> None:
        super().__init__(
            400,
            "Forgotten Email Not Subscribed",
            f"{email} was permanently deleted and cannot be re-imported. The contact must "
            "re-subscribe to get back on the list.",
        )


class InvalidEmailError(InvalidResourceError):
    """An address Mailchimp refuses (malformed, fake-looking, throttled): Invalid Resource with a detail."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class CampaignNotReadyError(BadRequestError):
    """Sending a campaign without list, subject, sender or with an unknown segment."""

    def __init__(self) -> None:
        super().__init__("Your Campaign is not ready to send.")


CATALOGUE: tuple[type[CatalogueError], ...] = (
    BadRequestError,
    InvalidActionError,
    InvalidResourceError,
    JSONParseError,
    APIKeyMissingError,
    APIKeyInvalidError,
    ForbiddenError,
    UserDisabledError,
    WrongDatacenterError,
    ResourceNotFoundError,
    MethodNotAllowedError,
    ResourceNestingTooDeepError,
    InvalidMethodOverrideError,
    RequestedFieldsInvalidError,
    TooManyRequestsError,
    InternalServerError,
    ComplianceRelatedError,
)
BY_SLUG: dict[str, type[CatalogueError]] = {cls.slug: cls for cls in CATALOGUE}

# The error catalogue (reference §12.2): slug -> (status, human title, detail).
ERRORS: dict[str, tuple[int, str, str]] = {
    cls.slug: (cls.status_code, cls.title_text, cls.default_detail) for cls in CATALOGUE
}
