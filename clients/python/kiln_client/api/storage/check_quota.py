from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.quota_check import QuotaCheck
from ...models.quota_check_request import QuotaCheckRequest
from ...types import Response


def _get_kwargs(
    namespace: str,
    model: str,
    *,
    body: QuotaCheckRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/models/{namespace}/{model}/quota-check".format(
            namespace=quote(str(namespace), safe=""),
            model=quote(str(model), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | QuotaCheck | None:
    if response.status_code == 200:
        response_200 = QuotaCheck.from_dict(response.json())

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

    if response.status_code == 404:
        response_404 = ErrorResponse.from_dict(response.json())

        return response_404

    if response.status_code == 408:
        response_408 = ErrorResponse.from_dict(response.json())

        return response_408

    if response.status_code == 409:
        response_409 = ErrorResponse.from_dict(response.json())

        return response_409

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
) -> Response[ErrorResponse | QuotaCheck]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    model: str,
    *,
    client: AuthenticatedClient,
    body: QuotaCheckRequest,
) -> Response[ErrorResponse | QuotaCheck]:
    """Check a push against the quota

     Would a version of these files fit the namespace's quota? `kiln push` asks before it uploads a byte
    (committing the version checks again). Needs write access.

    Args:
        namespace (str):
        model (str):
        body (QuotaCheckRequest): The files a push is about to upload and commit, to check against
            the namespace's quota first.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | QuotaCheck]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    model: str,
    *,
    client: AuthenticatedClient,
    body: QuotaCheckRequest,
) -> ErrorResponse | QuotaCheck | None:
    """Check a push against the quota

     Would a version of these files fit the namespace's quota? `kiln push` asks before it uploads a byte
    (committing the version checks again). Needs write access.

    Args:
        namespace (str):
        model (str):
        body (QuotaCheckRequest): The files a push is about to upload and commit, to check against
            the namespace's quota first.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | QuotaCheck
    """

    return sync_detailed(
        namespace=namespace,
        model=model,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    model: str,
    *,
    client: AuthenticatedClient,
    body: QuotaCheckRequest,
) -> Response[ErrorResponse | QuotaCheck]:
    """Check a push against the quota

     Would a version of these files fit the namespace's quota? `kiln push` asks before it uploads a byte
    (committing the version checks again). Needs write access.

    Args:
        namespace (str):
        model (str):
        body (QuotaCheckRequest): The files a push is about to upload and commit, to check against
            the namespace's quota first.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | QuotaCheck]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    model: str,
    *,
    client: AuthenticatedClient,
    body: QuotaCheckRequest,
) -> ErrorResponse | QuotaCheck | None:
    """Check a push against the quota

     Would a version of these files fit the namespace's quota? `kiln push` asks before it uploads a byte
    (committing the version checks again). Needs write access.

    Args:
        namespace (str):
        model (str):
        body (QuotaCheckRequest): The files a push is about to upload and commit, to check against
            the namespace's quota first.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | QuotaCheck
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            model=model,
            client=client,
            body=body,
        )
    ).parsed
