"""`POST /oauth2-token` (league/oauth2-server v8 behaviour) and bearer-token checks (§1.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .jsonapi import EmptyError, json_response
from .store import Client, OroStore

_INVALID_REQUEST = ("The request is missing a required parameter, includes an invalid parameter value, "
                    "includes a parameter more than once, or is otherwise malformed.")


def _oauth_error(request: Request, error: str, description: str, status: int, hint: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error, "error_description": description}
    if hint:
        body["hint"] = hint
    headers = {}
    auth = request.headers.get("authorization")
    if error == "invalid_client" and auth:
        scheme = "Bearer" if auth.startswith("Bearer") else "Basic"
        headers["WWW-Authenticate"] = f'{scheme} realm="OAuth"'
    return json_response(body, status, headers, media_type="application/json")


async def _params(request: Request) -> dict[str, Any]:
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype.endswith("json"):
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _store(request: Request) -> OroStore:
    store: OroStore = request.app.state.sandbox.oro
    return store


async def token_endpoint(request: Request) -> Response:
    """Issue tokens for the client_credentials, password and refresh_token grants."""
    if request.method == "OPTIONS":
        return Response(b"", status_code=200, headers={"Allow": "OPTIONS, POST"})
    store = _store(request)
    options = request.app.state.sandbox.options
    params = await _params(request)
    grant = params.get("grant_type")
    if grant not in ("client_credentials", "password", "refresh_token"):
        return _oauth_error(request, "unsupported_grant_type",
                            "The authorization grant type is not supported by the authorization server.", 400,
                            "Check that all required parameters have been provided")
    client_id = params.get("client_id")
    if not client_id:
        return _oauth_error(request, "invalid_request", _INVALID_REQUEST, 400, "Check the `client_id` parameter")
    client = store.clients.get(str(client_id))
    if client is None or params.get("client_secret") != client.secret or (
        grant != "refresh_token" and grant not in client.grants
    ):
        return _oauth_error(request, "invalid_client", "Client authentication failed", 401)
    ttl = int(options.token_ttl)
    body: dict[str, Any] = {"token_type": "Bearer", "expires_in": ttl}
    if grant == "client_credentials":
        body["access_token"] = store.issue_token(client.client_id, ttl)
        return json_response(body, media_type="application/json")
    if grant == "password":
        for name in ("username", "password"):
            if not params.get(name):
                return _oauth_error(request, "invalid_request", _INVALID_REQUEST, 400, f"Check the `{name}` parameter")
        username = str(params["username"])
        if store.backoffice_users.get(username) != params["password"]:
            return _oauth_error(request, "invalid_grant", "The user credentials were incorrect.", 400)
        body["access_token"] = store.issue_token(client.client_id, ttl, username)
        body["refresh_token"] = store.issue_refresh_token(client.client_id, username)
        return json_response(body, media_type="application/json")
    refresh = params.get("refresh_token")
    if not refresh:
        return _oauth_error(request, "invalid_request", _INVALID_REQUEST, 400, "Check the `refresh_token` parameter")
    entry = store.refresh_tokens.pop(str(refresh), None)
    if entry is None or entry.client_id != client.client_id or entry.expires <= store.clock.now().timestamp():
        return _oauth_error(request, "invalid_grant", "The refresh token is invalid.", 400,
                            "Token has been revoked" if entry else "Cannot decrypt the refresh token")
    body["access_token"] = store.issue_token(client.client_id, ttl, entry.username)
    body["refresh_token"] = store.issue_refresh_token(client.client_id, str(entry.username))
    return json_response(body, media_type="application/json")


def authenticate(request: Request) -> Client:
    """The client of the request's bearer token; 401 (empty body, ``WWW-Authenticate: Bearer``) otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        client = _store(request).check_token(token.strip())
        if client is not None:
            return client
    raise EmptyError(401, {"WWW-Authenticate": "Bearer"})
