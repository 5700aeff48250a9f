from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...types import UNSET, File, Response


def _get_kwargs(
    runner: str,
    job: str,
    *,
    body: File,
    step: int,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    params: dict[str, Any] = {}

    params["step"] = step

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/api/v1/runners/{runner}/distillations/{job}/checkpoint".format(
            runner=quote(str(runner), safe=""),
            job=quote(str(job), safe=""),
        ),
        "params": params,
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | ErrorResponse | None:
    if response.status_code == 204:
        response_204 = cast(Any, None)
        return response_204

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
) -> Response[Any | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    runner: str,
    job: str,
    *,
    client: AuthenticatedClient,
    body: File,
    step: int,
) -> Response[Any | ErrorResponse]:
    """Save a training state

     Replace the held job's training state (a safetensors file the runner resumes from) with the body.
    The
    previous state stays readable until this one is stored whole.

    Args:
        runner (str):
        job (str):
        step (int):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorResponse]
    """

    kwargs = _get_kwargs(
        runner=runner,
        job=job,
        body=body,
        step=step,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    runner: str,
    job: str,
    *,
    client: AuthenticatedClient,
    body: File,
    step: int,
) -> Any | ErrorResponse | None:
    """Save a training state

     Replace the held job's training state (a safetensors file the runner resumes from) with the body.
    The
    previous state stays readable until this one is stored whole.

    Args:
        runner (str):
        job (str):
        step (int):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorResponse
    """

    return sync_detailed(
        runner=runner,
        job=job,
        client=client,
        body=body,
        step=step,
    ).parsed


async def asyncio_detailed(
    runner: str,
    job: str,
    *,
    client: AuthenticatedClient,
    body: File,
    step: int,
) -> Response[Any | ErrorResponse]:
    """Save a training state

     Replace the held job's training state (a safetensors file the runner resumes from) with the body.
    The
    previous state stays readable until this one is stored whole.

    Args:
        runner (str):
        job (str):
        step (int):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorResponse]
    """

    kwargs = _get_kwargs(
        runner=runner,
        job=job,
        body=body,
        step=step,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    runner: str,
    job: str,
    *,
    client: AuthenticatedClient,
    body: File,
    step: int,
) -> Any | ErrorResponse | None:
    """Save a training state

     Replace the held job's training state (a safetensors file the runner resumes from) with the body.
    The
    previous state stays readable until this one is stored whole.

    Args:
        runner (str):
        job (str):
        step (int):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorResponse
    """

    return (
        await asyncio_detailed(
            runner=runner,
            job=job,
            client=client,
            body=body,
            step=step,
        )
    ).parsed
