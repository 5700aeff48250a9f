from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.serving_report import ServingReport
from ...models.serving_view import ServingView
from ...types import Response


def _get_kwargs(
    serving: str,
    *,
    body: ServingReport,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/api/v1/servings/{serving}".format(
            serving=quote(str(serving), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | ServingView | None:
    if response.status_code == 200:
        response_200 = ServingView.from_dict(response.json())

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
) -> Response[ErrorResponse | ServingView]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    serving: str,
    *,
    client: AuthenticatedClient,
    body: ServingReport,
) -> Response[ErrorResponse | ServingView]:
    """Report what a serving process serves

     `kiln-runner serve` reports the model, alias, version, variant and manifest sequence it serves and
    where it answers, every 30 s while it serves (a report not refreshed for 90 s is no longer listed).
    Needs an API token with the `runner` scope; a report can be refreshed only with the token that made
    it.

    Args:
        serving (str):
        body (ServingReport): What a serving process reports, with a runner-scoped token, every
            half minute while it serves.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | ServingView]
    """

    kwargs = _get_kwargs(
        serving=serving,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    serving: str,
    *,
    client: AuthenticatedClient,
    body: ServingReport,
) -> ErrorResponse | ServingView | None:
    """Report what a serving process serves

     `kiln-runner serve` reports the model, alias, version, variant and manifest sequence it serves and
    where it answers, every 30 s while it serves (a report not refreshed for 90 s is no longer listed).
    Needs an API token with the `runner` scope; a report can be refreshed only with the token that made
    it.

    Args:
        serving (str):
        body (ServingReport): What a serving process reports, with a runner-scoped token, every
            half minute while it serves.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | ServingView
    """

    return sync_detailed(
        serving=serving,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    serving: str,
    *,
    client: AuthenticatedClient,
    body: ServingReport,
) -> Response[ErrorResponse | ServingView]:
    """Report what a serving process serves

     `kiln-runner serve` reports the model, alias, version, variant and manifest sequence it serves and
    where it answers, every 30 s while it serves (a report not refreshed for 90 s is no longer listed).
    Needs an API token with the `runner` scope; a report can be refreshed only with the token that made
    it.

    Args:
        serving (str):
        body (ServingReport): What a serving process reports, with a runner-scoped token, every
            half minute while it serves.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | ServingView]
    """

    kwargs = _get_kwargs(
        serving=serving,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    serving: str,
    *,
    client: AuthenticatedClient,
    body: ServingReport,
) -> ErrorResponse | ServingView | None:
    """Report what a serving process serves

     `kiln-runner serve` reports the model, alias, version, variant and manifest sequence it serves and
    where it answers, every 30 s while it serves (a report not refreshed for 90 s is no longer listed).
    Needs an API token with the `runner` scope; a report can be refreshed only with the token that made
    it.

    Args:
        serving (str):
        body (ServingReport): What a serving process reports, with a runner-scoped token, every
            half minute while it serves.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | ServingView
    """

    return (
        await asyncio_detailed(
            serving=serving,
            client=client,
            body=body,
        )
    ).parsed
