from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.store_check_report import StoreCheckReport
from ...models.store_check_request import StoreCheckRequest
from ...types import Response


def _get_kwargs(
    *,
    body: StoreCheckRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/admin/fsck",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | StoreCheckReport | None:
    if response.status_code == 200:
        response_200 = StoreCheckReport.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorResponse.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorResponse.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ErrorResponse.from_dict(response.json())

        return response_403

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
) -> Response[ErrorResponse | StoreCheckReport]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: StoreCheckRequest,
) -> Response[ErrorResponse | StoreCheckReport]:
    """Check the store against the database

     Find recorded blobs missing from the store or of the wrong size (with `verify`, the wrong digest)
    and
    objects nothing records; with `repair`, delete orphans older than the grace period and mark the
    versions holding a missing blob damaged (not served) until they are whole again (administrators).

    Args:
        body (StoreCheckRequest): Compare the store with the database.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | StoreCheckReport]
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
    client: AuthenticatedClient,
    body: StoreCheckRequest,
) -> ErrorResponse | StoreCheckReport | None:
    """Check the store against the database

     Find recorded blobs missing from the store or of the wrong size (with `verify`, the wrong digest)
    and
    objects nothing records; with `repair`, delete orphans older than the grace period and mark the
    versions holding a missing blob damaged (not served) until they are whole again (administrators).

    Args:
        body (StoreCheckRequest): Compare the store with the database.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | StoreCheckReport
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: StoreCheckRequest,
) -> Response[ErrorResponse | StoreCheckReport]:
    """Check the store against the database

     Find recorded blobs missing from the store or of the wrong size (with `verify`, the wrong digest)
    and
    objects nothing records; with `repair`, delete orphans older than the grace period and mark the
    versions holding a missing blob damaged (not served) until they are whole again (administrators).

    Args:
        body (StoreCheckRequest): Compare the store with the database.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | StoreCheckReport]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: StoreCheckRequest,
) -> ErrorResponse | StoreCheckReport | None:
    """Check the store against the database

     Find recorded blobs missing from the store or of the wrong size (with `verify`, the wrong digest)
    and
    objects nothing records; with `repair`, delete orphans older than the grace period and mark the
    versions holding a missing blob damaged (not served) until they are whole again (administrators).

    Args:
        body (StoreCheckRequest): Compare the store with the database.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | StoreCheckReport
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
