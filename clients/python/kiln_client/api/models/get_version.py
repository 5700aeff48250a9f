from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.version_detail import VersionDetail
from ...types import Response


def _get_kwargs(
    namespace: str,
    model: str,
    version: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/models/{namespace}/{model}/versions/{version}".format(
            namespace=quote(str(namespace), safe=""),
            model=quote(str(model), safe=""),
            version=quote(str(version), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | VersionDetail | None:
    if response.status_code == 200:
        response_200 = VersionDetail.from_dict(response.json())

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
    version: str,
    *,
    client: AuthenticatedClient,
) -> Response[ErrorResponse | VersionDetail]:
    """Get a version

     One version: its files, status, pipeline jobs and the variants the pipeline made, where it came from
    (`lineage`) and the versions the caller may read that name it in their lineage (`derived`).

    Args:
        namespace (str):
        model (str):
        version (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | VersionDetail]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        version=version,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    model: str,
    version: str,
    *,
    client: AuthenticatedClient,
) -> ErrorResponse | VersionDetail | None:
    """Get a version

     One version: its files, status, pipeline jobs and the variants the pipeline made, where it came from
    (`lineage`) and the versions the caller may read that name it in their lineage (`derived`).

    Args:
        namespace (str):
        model (str):
        version (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | VersionDetail
    """

    return sync_detailed(
        namespace=namespace,
        model=model,
        version=version,
        client=client,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    model: str,
    version: str,
    *,
    client: AuthenticatedClient,
) -> Response[ErrorResponse | VersionDetail]:
    """Get a version

     One version: its files, status, pipeline jobs and the variants the pipeline made, where it came from
    (`lineage`) and the versions the caller may read that name it in their lineage (`derived`).

    Args:
        namespace (str):
        model (str):
        version (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | VersionDetail]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        version=version,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    model: str,
    version: str,
    *,
    client: AuthenticatedClient,
) -> ErrorResponse | VersionDetail | None:
    """Get a version

     One version: its files, status, pipeline jobs and the variants the pipeline made, where it came from
    (`lineage`) and the versions the caller may read that name it in their lineage (`derived`).

    Args:
        namespace (str):
        model (str):
        version (str):

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
            version=version,
            client=client,
        )
    ).parsed
