from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.created_webhook import CreatedWebhook
from ...models.error_response import ErrorResponse
from ...models.new_webhook import NewWebhook
from ...types import Response


def _get_kwargs(
    namespace: str,
    *,
    body: NewWebhook,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/namespaces/{namespace}/webhooks".format(
            namespace=quote(str(namespace), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> CreatedWebhook | ErrorResponse | None:
    if response.status_code == 201:
        response_201 = CreatedWebhook.from_dict(response.json())

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
) -> Response[CreatedWebhook | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    *,
    client: AuthenticatedClient,
    body: NewWebhook,
) -> Response[CreatedWebhook | ErrorResponse]:
    """Subscribe to a namespace's events

     Deliveries are POSTed to the URL with the Standard Webhooks headers (`webhook-id`,
    `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the secret in this answer, shown only
    once), retried with backoff for a day, one model's events in order (namespace admins; audited).

    Args:
        namespace (str):
        body (NewWebhook): Subscribe a URL to a namespace's events, or to one model's.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedWebhook | ErrorResponse]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    *,
    client: AuthenticatedClient,
    body: NewWebhook,
) -> CreatedWebhook | ErrorResponse | None:
    """Subscribe to a namespace's events

     Deliveries are POSTed to the URL with the Standard Webhooks headers (`webhook-id`,
    `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the secret in this answer, shown only
    once), retried with backoff for a day, one model's events in order (namespace admins; audited).

    Args:
        namespace (str):
        body (NewWebhook): Subscribe a URL to a namespace's events, or to one model's.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedWebhook | ErrorResponse
    """

    return sync_detailed(
        namespace=namespace,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    *,
    client: AuthenticatedClient,
    body: NewWebhook,
) -> Response[CreatedWebhook | ErrorResponse]:
    """Subscribe to a namespace's events

     Deliveries are POSTed to the URL with the Standard Webhooks headers (`webhook-id`,
    `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the secret in this answer, shown only
    once), retried with backoff for a day, one model's events in order (namespace admins; audited).

    Args:
        namespace (str):
        body (NewWebhook): Subscribe a URL to a namespace's events, or to one model's.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CreatedWebhook | ErrorResponse]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    *,
    client: AuthenticatedClient,
    body: NewWebhook,
) -> CreatedWebhook | ErrorResponse | None:
    """Subscribe to a namespace's events

     Deliveries are POSTed to the URL with the Standard Webhooks headers (`webhook-id`,
    `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the secret in this answer, shown only
    once), retried with backoff for a day, one model's events in order (namespace admins; audited).

    Args:
        namespace (str):
        body (NewWebhook): Subscribe a URL to a namespace's events, or to one model's.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CreatedWebhook | ErrorResponse
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            client=client,
            body=body,
        )
    ).parsed
