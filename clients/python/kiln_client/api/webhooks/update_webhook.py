from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.webhook_subscription import WebhookSubscription
from ...models.webhook_update import WebhookUpdate
from ...types import Response


def _get_kwargs(
    namespace: str,
    id: str,
    *,
    body: WebhookUpdate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/api/v1/namespaces/{namespace}/webhooks/{id}".format(
            namespace=quote(str(namespace), safe=""),
            id=quote(str(id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | WebhookSubscription | None:
    if response.status_code == 200:
        response_200 = WebhookSubscription.from_dict(response.json())

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
) -> Response[ErrorResponse | WebhookSubscription]:
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
    body: WebhookUpdate,
) -> Response[ErrorResponse | WebhookSubscription]:
    """Change a webhook subscription

     Its URL, events or description; `enabled: true` turns on a subscription kiln disabled after failing
    deliveries (its failure count reset), `false` pauses it (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        body (WebhookUpdate): Change a subscription; what is absent stays.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | WebhookSubscription]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        id=id,
        body=body,
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
    body: WebhookUpdate,
) -> ErrorResponse | WebhookSubscription | None:
    """Change a webhook subscription

     Its URL, events or description; `enabled: true` turns on a subscription kiln disabled after failing
    deliveries (its failure count reset), `false` pauses it (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        body (WebhookUpdate): Change a subscription; what is absent stays.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | WebhookSubscription
    """

    return sync_detailed(
        namespace=namespace,
        id=id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    id: str,
    *,
    client: AuthenticatedClient,
    body: WebhookUpdate,
) -> Response[ErrorResponse | WebhookSubscription]:
    """Change a webhook subscription

     Its URL, events or description; `enabled: true` turns on a subscription kiln disabled after failing
    deliveries (its failure count reset), `false` pauses it (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        body (WebhookUpdate): Change a subscription; what is absent stays.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | WebhookSubscription]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        id=id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    id: str,
    *,
    client: AuthenticatedClient,
    body: WebhookUpdate,
) -> ErrorResponse | WebhookSubscription | None:
    """Change a webhook subscription

     Its URL, events or description; `enabled: true` turns on a subscription kiln disabled after failing
    deliveries (its failure count reset), `false` pauses it (namespace admins; audited).

    Args:
        namespace (str):
        id (str):
        body (WebhookUpdate): Change a subscription; what is absent stays.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | WebhookSubscription
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            id=id,
            client=client,
            body=body,
        )
    ).parsed
