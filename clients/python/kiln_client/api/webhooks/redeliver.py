from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.webhook_delivery import WebhookDelivery
from ...types import Response


def _get_kwargs(
    namespace: str,
    id: str,
    delivery: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/namespaces/{namespace}/webhooks/{id}/deliveries/{delivery}/redeliver".format(
            namespace=quote(str(namespace), safe=""),
            id=quote(str(id), safe=""),
            delivery=quote(str(delivery), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | WebhookDelivery | None:
    if response.status_code == 200:
        response_200 = WebhookDelivery.from_dict(response.json())

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
) -> Response[ErrorResponse | WebhookDelivery]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    id: str,
    delivery: str,
    *,
    client: AuthenticatedClient,
) -> Response[ErrorResponse | WebhookDelivery]:
    """Send a delivery again

     Now, under the same `webhook-id` (so a receiver that already has it can drop it): a delivery the
    receiver lost, or one given up after a day of retries (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        delivery (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | WebhookDelivery]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        id=id,
        delivery=delivery,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    id: str,
    delivery: str,
    *,
    client: AuthenticatedClient,
) -> ErrorResponse | WebhookDelivery | None:
    """Send a delivery again

     Now, under the same `webhook-id` (so a receiver that already has it can drop it): a delivery the
    receiver lost, or one given up after a day of retries (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        delivery (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | WebhookDelivery
    """

    return sync_detailed(
        namespace=namespace,
        id=id,
        delivery=delivery,
        client=client,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    id: str,
    delivery: str,
    *,
    client: AuthenticatedClient,
) -> Response[ErrorResponse | WebhookDelivery]:
    """Send a delivery again

     Now, under the same `webhook-id` (so a receiver that already has it can drop it): a delivery the
    receiver lost, or one given up after a day of retries (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        delivery (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | WebhookDelivery]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        id=id,
        delivery=delivery,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    id: str,
    delivery: str,
    *,
    client: AuthenticatedClient,
) -> ErrorResponse | WebhookDelivery | None:
    """Send a delivery again

     Now, under the same `webhook-id` (so a receiver that already has it can drop it): a delivery the
    receiver lost, or one given up after a day of retries (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        delivery (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | WebhookDelivery
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            id=id,
            delivery=delivery,
            client=client,
        )
    ).parsed
