from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.file_entry import FileEntry
from ...types import File, Response


def _get_kwargs(
    runner: str,
    job: str,
    path: str,
    *,
    body: File,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/api/v1/runners/{runner}/distillations/{job}/files/{path}".format(
            runner=quote(str(runner), safe=""),
            job=quote(str(job), safe=""),
            path=quote(str(path), safe=""),
        ),
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | FileEntry | None:
    if response.status_code == 200:
        response_200 = FileEntry.from_dict(response.json())

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
) -> Response[ErrorResponse | FileEntry]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    runner: str,
    job: str,
    path: str,
    *,
    client: AuthenticatedClient,
    body: File,
) -> Response[ErrorResponse | FileEntry]:
    """Upload a student file

     One file of the student a held job made, stored as a blob for the report to commit.

    Args:
        runner (str):
        job (str):
        path (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | FileEntry]
    """

    kwargs = _get_kwargs(
        runner=runner,
        job=job,
        path=path,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    runner: str,
    job: str,
    path: str,
    *,
    client: AuthenticatedClient,
    body: File,
) -> ErrorResponse | FileEntry | None:
    """Upload a student file

     One file of the student a held job made, stored as a blob for the report to commit.

    Args:
        runner (str):
        job (str):
        path (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | FileEntry
    """

    return sync_detailed(
        runner=runner,
        job=job,
        path=path,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    runner: str,
    job: str,
    path: str,
    *,
    client: AuthenticatedClient,
    body: File,
) -> Response[ErrorResponse | FileEntry]:
    """Upload a student file

     One file of the student a held job made, stored as a blob for the report to commit.

    Args:
        runner (str):
        job (str):
        path (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | FileEntry]
    """

    kwargs = _get_kwargs(
        runner=runner,
        job=job,
        path=path,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    runner: str,
    job: str,
    path: str,
    *,
    client: AuthenticatedClient,
    body: File,
) -> ErrorResponse | FileEntry | None:
    """Upload a student file

     One file of the student a held job made, stored as a blob for the report to commit.

    Args:
        runner (str):
        job (str):
        path (str):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | FileEntry
    """

    return (
        await asyncio_detailed(
            runner=runner,
            job=job,
            path=path,
            client=client,
            body=body,
        )
    ).parsed
