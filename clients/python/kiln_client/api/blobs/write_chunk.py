from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.upload_session import UploadSession
from ...types import File, Response


def _get_kwargs(
    id: str,
    *,
    body: File,
    content_range: str,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    headers["Content-Range"] = content_range

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/api/v1/uploads/{id}".format(
            id=quote(str(id), safe=""),
        ),
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | UploadSession | None:
    if response.status_code == 200:
        response_200 = UploadSession.from_dict(response.json())

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
) -> Response[ErrorResponse | UploadSession]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: str,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,
) -> Response[ErrorResponse | UploadSession]:
    """Upload a chunk

     Send one chunk: raw bytes with `Content-Range: bytes START-END/SIZE`, START equal to the session's
    offset. Every chunk but the last must be a multiple of `part_size`. A chunk that does not arrive
    whole
    is not recorded; send it again.

    Args:
        id (str):
        content_range (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | UploadSession]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
        content_range=content_range,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: str,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,
) -> ErrorResponse | UploadSession | None:
    """Upload a chunk

     Send one chunk: raw bytes with `Content-Range: bytes START-END/SIZE`, START equal to the session's
    offset. Every chunk but the last must be a multiple of `part_size`. A chunk that does not arrive
    whole
    is not recorded; send it again.

    Args:
        id (str):
        content_range (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | UploadSession
    """

    return sync_detailed(
        id=id,
        client=client,
        body=body,
        content_range=content_range,
    ).parsed


async def asyncio_detailed(
    id: str,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,
) -> Response[ErrorResponse | UploadSession]:
    """Upload a chunk

     Send one chunk: raw bytes with `Content-Range: bytes START-END/SIZE`, START equal to the session's
    offset. Every chunk but the last must be a multiple of `part_size`. A chunk that does not arrive
    whole
    is not recorded; send it again.

    Args:
        id (str):
        content_range (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | UploadSession]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
        content_range=content_range,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: str,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,
) -> ErrorResponse | UploadSession | None:
    """Upload a chunk

     Send one chunk: raw bytes with `Content-Range: bytes START-END/SIZE`, START equal to the session's
    offset. Every chunk but the last must be a multiple of `part_size`. A chunk that does not arrive
    whole
    is not recorded; send it again.

    Args:
        id (str):
        content_range (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | UploadSession
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            body=body,
            content_range=content_range,
        )
    ).parsed
