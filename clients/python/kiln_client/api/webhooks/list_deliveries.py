from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.webhook_deliveries import WebhookDeliveries
from ...types import UNSET, Response, Unset


def _get_kwargs(
    namespace: str,
    id: str,
    *,
    limit: int | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/namespaces/{namespace}/webhooks/{id}/deliveries".format(
            namespace=quote(str(namespace), safe=""),
            id=quote(str(id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | WebhookDeliveries | None:
    if response.status_code == 200:
        response_200 = WebhookDeliveries.from_dict(response.json())

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
) -> Response[ErrorResponse | WebhookDeliveries]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
) -> Response[ErrorResponse | WebhookDeliveries]:
    """List a subscription's deliveries

     Newest first, each with its tries: the receiver's status, how long it took, the start of its
    answer, or why no answer counted.

    Args:
        namespace (str):
        id (str):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | WebhookDeliveries]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        id=id,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
) -> ErrorResponse | WebhookDeliveries | None:
    """List a subscription's deliveries

     Newest first, each with its tries: the receiver's status, how long it took, the start of its
    answer, or why no answer counted.

    Args:
        namespace (str):
        id (str):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | WebhookDeliveries
    """

    return sync_detailed(
        namespace=namespace,
        id=id,
        client=client,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
) -> Response[ErrorResponse | WebhookDeliveries]:
    """List a subscription's deliveries

     Newest first, each with its tries: the receiver's status, how long it took, the start of its
    answer, or why no answer counted.

    Args:
        namespace (str):
        id (str):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | WebhookDeliveries]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        id=id,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
) -> ErrorResponse | WebhookDeliveries | None:
    """List a subscription's deliveries

     Newest first, each with its tries: the receiver's status, how long it took, the start of its
    answer, or why no answer counted.

    Args:
        namespace (str):
        id (str):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | WebhookDeliveries
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            id=id,
            client=client,
            limit=limit,
        )
    ).parsed
