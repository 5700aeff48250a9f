from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.access_token import AccessToken
from ...models.api_token_credentials import ApiTokenCredentials
from ...models.error_response import ErrorResponse
from ...models.password_credentials import PasswordCredentials
from ...types import Response


def _get_kwargs(
    *,
    body: ApiTokenCredentials | PasswordCredentials,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/auth/token",
    }

    if isinstance(body, ApiTokenCredentials):
        _kwargs["json"] = body.to_dict()
    else:
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> AccessToken | ErrorResponse | None:
    if response.status_code == 200:
        response_200 = AccessToken.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorResponse.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorResponse.from_dict(response.json())

        return response_401

    if response.status_code == 408:
        response_408 = ErrorResponse.from_dict(response.json())

        return response_408

    if response.status_code == 413:
        response_413 = ErrorResponse.from_dict(response.json())

        return response_413

    if response.status_code == 429:
        response_429 = ErrorResponse.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = ErrorResponse.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[AccessToken | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: ApiTokenCredentials | PasswordCredentials,
) -> Response[AccessToken | ErrorResponse]:
    """Get an access token

     Exchange an API token, or a user name and password, for an access token (a JWT valid 15 minutes).
    Public: this is how a caller signs in.

    Args:
        body (ApiTokenCredentials | PasswordCredentials): Exchange a long-lived credential for a
            short-lived access token: an API token, or a user name and password.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AccessToken | ErrorResponse]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: ApiTokenCredentials | PasswordCredentials,
) -> AccessToken | ErrorResponse | None:
    """Get an access token

     Exchange an API token, or a user name and password, for an access token (a JWT valid 15 minutes).
    Public: this is how a caller signs in.

    Args:
        body (ApiTokenCredentials | PasswordCredentials): Exchange a long-lived credential for a
            short-lived access token: an API token, or a user name and password.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AccessToken | ErrorResponse
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: ApiTokenCredentials | PasswordCredentials,
) -> Response[AccessToken | ErrorResponse]:
    """Get an access token

     Exchange an API token, or a user name and password, for an access token (a JWT valid 15 minutes).
    Public: this is how a caller signs in.

    Args:
        body (ApiTokenCredentials | PasswordCredentials): Exchange a long-lived credential for a
            short-lived access token: an API token, or a user name and password.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AccessToken | ErrorResponse]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: ApiTokenCredentials | PasswordCredentials,
) -> AccessToken | ErrorResponse | None:
    """Get an access token

     Exchange an API token, or a user name and password, for an access token (a JWT valid 15 minutes).
    Public: this is how a caller signs in.

    Args:
        body (ApiTokenCredentials | PasswordCredentials): Exchange a long-lived credential for a
            short-lived access token: an API token, or a user name and password.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AccessToken | ErrorResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
