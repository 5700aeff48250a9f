from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.manifest_response import ManifestResponse
from ...types import Response


def _get_kwargs(
    namespace: str,
    model: str,
    alias: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifest".format(
            namespace=quote(str(namespace), safe=""),
            model=quote(str(model), safe=""),
            alias=quote(str(alias), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | ErrorResponse | ManifestResponse | None:
    if response.status_code == 200:
        response_200 = ManifestResponse.from_dict(response.json())

        return response_200

    if response.status_code == 304:
        response_304 = cast(Any, None)
        return response_304

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
) -> Response[Any | ErrorResponse | ManifestResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    model: str,
    alias: str,
    *,
    client: AuthenticatedClient,
) -> Response[Any | ErrorResponse | ManifestResponse]:
    """Get an alias's manifest

     The alias's newest manifest (`acme/sentiment@production`): what a deployment system fetches. Each
    move of the alias publishes one with the next sequence. JSON by default; with
    `Accept: application/jose`, the compact JWS alone.

    Args:
        namespace (str):
        model (str):
        alias (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorResponse | ManifestResponse]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        alias=alias,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    model: str,
    alias: str,
    *,
    client: AuthenticatedClient,
) -> Any | ErrorResponse | ManifestResponse | None:
    """Get an alias's manifest

     The alias's newest manifest (`acme/sentiment@production`): what a deployment system fetches. Each
    move of the alias publishes one with the next sequence. JSON by default; with
    `Accept: application/jose`, the compact JWS alone.

    Args:
        namespace (str):
        model (str):
        alias (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorResponse | ManifestResponse
    """

    return sync_detailed(
        namespace=namespace,
        model=model,
        alias=alias,
        client=client,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    model: str,
    alias: str,
    *,
    client: AuthenticatedClient,
) -> Response[Any | ErrorResponse | ManifestResponse]:
    """Get an alias's manifest

     The alias's newest manifest (`acme/sentiment@production`): what a deployment system fetches. Each
    move of the alias publishes one with the next sequence. JSON by default; with
    `Accept: application/jose`, the compact JWS alone.

    Args:
        namespace (str):
        model (str):
        alias (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorResponse | ManifestResponse]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        alias=alias,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    model: str,
    alias: str,
    *,
    client: AuthenticatedClient,
) -> Any | ErrorResponse | ManifestResponse | None:
    """Get an alias's manifest

     The alias's newest manifest (`acme/sentiment@production`): what a deployment system fetches. Each
    move of the alias publishes one with the next sequence. JSON by default; with
    `Accept: application/jose`, the compact JWS alone.

    Args:
        namespace (str):
        model (str):
        alias (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorResponse | ManifestResponse
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            model=model,
            alias=alias,
            client=client,
        )
    ).parsed
