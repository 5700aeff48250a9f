from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.create_version_request import CreateVersionRequest
from ...models.error_response import ErrorResponse
from ...models.version_detail import VersionDetail
from ...types import Response


def _get_kwargs(
    namespace: str,
    model: str,
    *,
    body: CreateVersionRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/models/{namespace}/{model}/versions".format(
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
) -> ErrorResponse | VersionDetail | None:
    if response.status_code == 200:
        response_200 = VersionDetail.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = VersionDetail.from_dict(response.json())

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
) -> Response[ErrorResponse | VersionDetail]:
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
    body: CreateVersionRequest,
) -> Response[ErrorResponse | VersionDetail]:
    """Commit a version

     Commit a version from blobs already uploaded, naming each file's path, digest and size. Creates the
    model on first push (and the namespace, for an administrator). Committing the same version with
    identical files again is a no-op (200); with different files, 409. The pipeline (scan, convert,
    optimize, benchmark) starts on the new version. An optional `lineage` records where the version came
    from: parent versions with their roles, datasets (kiln versions, whose file digests are recorded, or
    external URIs), the training run, the producing tool and hyperparameters; every kiln version it
    names
    must exist and be readable by the caller. A re-commit that states a lineage must state the recorded
    one.

    Args:
        namespace (str):
        model (str):
        body (CreateVersionRequest): Commit a version from blobs already uploaded. Identical
            content for an existing version is a no-op;
            different content (files, or a lineage that differs from the recorded one) is refused with
            409.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | VersionDetail]
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
    body: CreateVersionRequest,
) -> ErrorResponse | VersionDetail | None:
    """Commit a version

     Commit a version from blobs already uploaded, naming each file's path, digest and size. Creates the
    model on first push (and the namespace, for an administrator). Committing the same version with
    identical files again is a no-op (200); with different files, 409. The pipeline (scan, convert,
    optimize, benchmark) starts on the new version. An optional `lineage` records where the version came
    from: parent versions with their roles, datasets (kiln versions, whose file digests are recorded, or
    external URIs), the training run, the producing tool and hyperparameters; every kiln version it
    names
    must exist and be readable by the caller. A re-commit that states a lineage must state the recorded
    one.

    Args:
        namespace (str):
        model (str):
        body (CreateVersionRequest): Commit a version from blobs already uploaded. Identical
            content for an existing version is a no-op;
            different content (files, or a lineage that differs from the recorded one) is refused with
            409.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | VersionDetail
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
    body: CreateVersionRequest,
) -> Response[ErrorResponse | VersionDetail]:
    """Commit a version

     Commit a version from blobs already uploaded, naming each file's path, digest and size. Creates the
    model on first push (and the namespace, for an administrator). Committing the same version with
    identical files again is a no-op (200); with different files, 409. The pipeline (scan, convert,
    optimize, benchmark) starts on the new version. An optional `lineage` records where the version came
    from: parent versions with their roles, datasets (kiln versions, whose file digests are recorded, or
    external URIs), the training run, the producing tool and hyperparameters; every kiln version it
    names
    must exist and be readable by the caller. A re-commit that states a lineage must state the recorded
    one.

    Args:
        namespace (str):
        model (str):
        body (CreateVersionRequest): Commit a version from blobs already uploaded. Identical
            content for an existing version is a no-op;
            different content (files, or a lineage that differs from the recorded one) is refused with
            409.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | VersionDetail]
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
    body: CreateVersionRequest,
) -> ErrorResponse | VersionDetail | None:
    """Commit a version

     Commit a version from blobs already uploaded, naming each file's path, digest and size. Creates the
    model on first push (and the namespace, for an administrator). Committing the same version with
    identical files again is a no-op (200); with different files, 409. The pipeline (scan, convert,
    optimize, benchmark) starts on the new version. An optional `lineage` records where the version came
    from: parent versions with their roles, datasets (kiln versions, whose file digests are recorded, or
    external URIs), the training run, the producing tool and hyperparameters; every kiln version it
    names
    must exist and be readable by the caller. A re-commit that states a lineage must state the recorded
    one.

    Args:
        namespace (str):
        model (str):
        body (CreateVersionRequest): Commit a version from blobs already uploaded. Identical
            content for an existing version is a no-op;
            different content (files, or a lineage that differs from the recorded one) is refused with
            409.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | VersionDetail
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            model=model,
            client=client,
            body=body,
        )
    ).parsed
