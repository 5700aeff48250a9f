from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.distillation_result_type_0 import DistillationResultType0
from ...models.distillation_result_type_1 import DistillationResultType1
from ...models.error_response import ErrorResponse
from ...types import Response


def _get_kwargs(
    runner: str,
    job: str,
    *,
    body: DistillationResultType0 | DistillationResultType1,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/runners/{runner}/distillations/{job}/result".format(
            runner=quote(str(runner), safe=""),
            job=quote(str(job), safe=""),
        ),
    }

    if isinstance(body, DistillationResultType0):
        _kwargs["json"] = body.to_dict()
    else:
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

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
    body: DistillationResultType0 | DistillationResultType1,
) -> Response[Any | ErrorResponse]:
    """Report a distillation

     End a held job: the student's uploaded files and report (committed as the requested version, with
    its
    lineage), or why it cannot be distilled (final).

    Args:
        runner (str):
        job (str):
        body (DistillationResultType0 | DistillationResultType1): What a runner reports at the end
            of a distillation it holds.

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
    body: DistillationResultType0 | DistillationResultType1,
) -> Any | ErrorResponse | None:
    """Report a distillation

     End a held job: the student's uploaded files and report (committed as the requested version, with
    its
    lineage), or why it cannot be distilled (final).

    Args:
        runner (str):
        job (str):
        body (DistillationResultType0 | DistillationResultType1): What a runner reports at the end
            of a distillation it holds.

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
    ).parsed


async def asyncio_detailed(
    runner: str,
    job: str,
    *,
    client: AuthenticatedClient,
    body: DistillationResultType0 | DistillationResultType1,
) -> Response[Any | ErrorResponse]:
    """Report a distillation

     End a held job: the student's uploaded files and report (committed as the requested version, with
    its
    lineage), or why it cannot be distilled (final).

    Args:
        runner (str):
        job (str):
        body (DistillationResultType0 | DistillationResultType1): What a runner reports at the end
            of a distillation it holds.

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
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    runner: str,
    job: str,
    *,
    client: AuthenticatedClient,
    body: DistillationResultType0 | DistillationResultType1,
) -> Any | ErrorResponse | None:
    """Report a distillation

     End a held job: the student's uploaded files and report (committed as the requested version, with
    its
    lineage), or why it cannot be distilled (final).

    Args:
        runner (str):
        job (str):
        body (DistillationResultType0 | DistillationResultType1): What a runner reports at the end
            of a distillation it holds.

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
        )
    ).parsed
