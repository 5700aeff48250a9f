from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.heartbeat_ack import HeartbeatAck
from ...models.runner_heartbeat import RunnerHeartbeat
from ...types import Response


def _get_kwargs(
    runner: str,
    *,
    body: RunnerHeartbeat,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/runners/{runner}/heartbeat".format(
            runner=quote(str(runner), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | HeartbeatAck | None:
    if response.status_code == 200:
        response_200 = HeartbeatAck.from_dict(response.json())

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
) -> Response[ErrorResponse | HeartbeatAck]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    runner: str,
    *,
    client: AuthenticatedClient,
    body: RunnerHeartbeat,
) -> Response[ErrorResponse | HeartbeatAck]:
    """Send a runner heartbeat

     The runner is alive; with `job_id`, the lease on that job is extended.

    Args:
        runner (str):
        body (RunnerHeartbeat):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | HeartbeatAck]
    """

    kwargs = _get_kwargs(
        runner=runner,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    runner: str,
    *,
    client: AuthenticatedClient,
    body: RunnerHeartbeat,
) -> ErrorResponse | HeartbeatAck | None:
    """Send a runner heartbeat

     The runner is alive; with `job_id`, the lease on that job is extended.

    Args:
        runner (str):
        body (RunnerHeartbeat):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | HeartbeatAck
    """

    return sync_detailed(
        runner=runner,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    runner: str,
    *,
    client: AuthenticatedClient,
    body: RunnerHeartbeat,
) -> Response[ErrorResponse | HeartbeatAck]:
    """Send a runner heartbeat

     The runner is alive; with `job_id`, the lease on that job is extended.

    Args:
        runner (str):
        body (RunnerHeartbeat):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | HeartbeatAck]
    """

    kwargs = _get_kwargs(
        runner=runner,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    runner: str,
    *,
    client: AuthenticatedClient,
    body: RunnerHeartbeat,
) -> ErrorResponse | HeartbeatAck | None:
    """Send a runner heartbeat

     The runner is alive; with `job_id`, the lease on that job is extended.

    Args:
        runner (str):
        body (RunnerHeartbeat):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | HeartbeatAck
    """

    return (
        await asyncio_detailed(
            runner=runner,
            client=client,
            body=body,
        )
    ).parsed
