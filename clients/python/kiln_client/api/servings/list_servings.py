from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.serving_view import ServingView
from ...types import Response


def _get_kwargs(
    namespace: str,
    model: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/models/{namespace}/{model}/servings".format(
            namespace=quote(str(namespace), safe=""),
            model=quote(str(model), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | list[ServingView] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in _response_200:
            response_200_item = ServingView.from_dict(response_200_item_data)

            response_200.append(response_200_item)

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
) -> Response[ErrorResponse | list[ServingView]]:
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
) -> Response[ErrorResponse | list[ServingView]]:
    """List where a model is served

     The serving processes that reported in the last 90 s what they serve of this model: alias, version,
    variant, manifest sequence, engine, device and endpoints.

    Args:
        namespace (str):
        model (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | list[ServingView]]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
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
) -> ErrorResponse | list[ServingView] | None:
    """List where a model is served

     The serving processes that reported in the last 90 s what they serve of this model: alias, version,
    variant, manifest sequence, engine, device and endpoints.

    Args:
        namespace (str):
        model (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | list[ServingView]
    """

    return sync_detailed(
        namespace=namespace,
        model=model,
        client=client,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    model: str,
    *,
    client: AuthenticatedClient,
) -> Response[ErrorResponse | list[ServingView]]:
    """List where a model is served

     The serving processes that reported in the last 90 s what they serve of this model: alias, version,
    variant, manifest sequence, engine, device and endpoints.

    Args:
        namespace (str):
        model (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | list[ServingView]]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    model: str,
    *,
    client: AuthenticatedClient,
) -> ErrorResponse | list[ServingView] | None:
    """List where a model is served

     The serving processes that reported in the last 90 s what they serve of this model: alias, version,
    variant, manifest sequence, engine, device and endpoints.

    Args:
        namespace (str):
        model (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | list[ServingView]
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            model=model,
            client=client,
        )
    ).parsed
