from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.create_upload_request import CreateUploadRequest
from ...models.error_response import ErrorResponse
from ...models.upload_session import UploadSession
from ...types import Response


def _get_kwargs(
    *,
    body: CreateUploadRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/uploads",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | UploadSession | None:
    if response.status_code == 200:
        response_200 = UploadSession.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = UploadSession.from_dict(response.json())

        return response_201

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
) -> Response[ErrorResponse | UploadSession]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: CreateUploadRequest,
) -> Response[ErrorResponse | UploadSession]:
    """Start an upload

     Start an upload session for one blob, or resume the caller's unfinished one for the same digest and
    size. Then send chunks with `PATCH /uploads/{id}` and finish with `POST /uploads/{id}/commit`.

    Args:
        body (CreateUploadRequest): Start (or resume) uploading one blob. When an unfinished
            session for the same digest and size exists,
            the server returns it, with its offset, instead of starting over.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | UploadSession]
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
    body: CreateUploadRequest,
) -> ErrorResponse | UploadSession | None:
    """Start an upload

     Start an upload session for one blob, or resume the caller's unfinished one for the same digest and
    size. Then send chunks with `PATCH /uploads/{id}` and finish with `POST /uploads/{id}/commit`.

    Args:
        body (CreateUploadRequest): Start (or resume) uploading one blob. When an unfinished
            session for the same digest and size exists,
            the server returns it, with its offset, instead of starting over.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | UploadSession
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: CreateUploadRequest,
) -> Response[ErrorResponse | UploadSession]:
    """Start an upload

     Start an upload session for one blob, or resume the caller's unfinished one for the same digest and
    size. Then send chunks with `PATCH /uploads/{id}` and finish with `POST /uploads/{id}/commit`.

    Args:
        body (CreateUploadRequest): Start (or resume) uploading one blob. When an unfinished
            session for the same digest and size exists,
            the server returns it, with its offset, instead of starting over.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | UploadSession]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: CreateUploadRequest,
) -> ErrorResponse | UploadSession | None:
    """Start an upload

     Start an upload session for one blob, or resume the caller's unfinished one for the same digest and
    size. Then send chunks with `PATCH /uploads/{id}` and finish with `POST /uploads/{id}/commit`.

    Args:
        body (CreateUploadRequest): Start (or resume) uploading one blob. When an unfinished
            session for the same digest and size exists,
            the server returns it, with its offset, instead of starting over.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | UploadSession
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
