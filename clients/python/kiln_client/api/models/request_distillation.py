from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.distillation import Distillation
from ...models.distillation_request import DistillationRequest
from ...models.error_response import ErrorResponse
from ...types import Response


def _get_kwargs(
    namespace: str,
    model: str,
    version: str,
    *,
    body: DistillationRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/models/{namespace}/{model}/versions/{version}/distillations".format(
            namespace=quote(str(namespace), safe=""),
            model=quote(str(model), safe=""),
            version=quote(str(version), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Distillation | ErrorResponse | None:
    if response.status_code == 201:
        response_201 = Distillation.from_dict(response.json())

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
) -> Response[Distillation | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    model: str,
    version: str,
    *,
    client: AuthenticatedClient,
    body: DistillationRequest,
) -> Response[Distillation | ErrorResponse]:
    """Distill a version

     Queue a distillation of this version (the teacher) into a new version `into`, which the caller must
    be able to write: a runner that distills claims it under a lease, trains a student with fewer layers
    on the teacher's outputs, checkpoints every few minutes (a runner that dies loses at most one
    interval)
    and reports progress; the student is committed as a new version with its lineage and report, and
    runs
    through the normal pipeline.

    Args:
        namespace (str):
        model (str):
        version (str):
        body (DistillationRequest): `POST
            /api/v1/models/{namespace}/{model}/versions/{version}/distillations`: distill that
            version.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Distillation | ErrorResponse]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        version=version,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    model: str,
    version: str,
    *,
    client: AuthenticatedClient,
    body: DistillationRequest,
) -> Distillation | ErrorResponse | None:
    """Distill a version

     Queue a distillation of this version (the teacher) into a new version `into`, which the caller must
    be able to write: a runner that distills claims it under a lease, trains a student with fewer layers
    on the teacher's outputs, checkpoints every few minutes (a runner that dies loses at most one
    interval)
    and reports progress; the student is committed as a new version with its lineage and report, and
    runs
    through the normal pipeline.

    Args:
        namespace (str):
        model (str):
        version (str):
        body (DistillationRequest): `POST
            /api/v1/models/{namespace}/{model}/versions/{version}/distillations`: distill that
            version.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Distillation | ErrorResponse
    """

    return sync_detailed(
        namespace=namespace,
        model=model,
        version=version,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    model: str,
    version: str,
    *,
    client: AuthenticatedClient,
    body: DistillationRequest,
) -> Response[Distillation | ErrorResponse]:
    """Distill a version

     Queue a distillation of this version (the teacher) into a new version `into`, which the caller must
    be able to write: a runner that distills claims it under a lease, trains a student with fewer layers
    on the teacher's outputs, checkpoints every few minutes (a runner that dies loses at most one
    interval)
    and reports progress; the student is committed as a new version with its lineage and report, and
    runs
    through the normal pipeline.

    Args:
        namespace (str):
        model (str):
        version (str):
        body (DistillationRequest): `POST
            /api/v1/models/{namespace}/{model}/versions/{version}/distillations`: distill that
            version.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Distillation | ErrorResponse]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        model=model,
        version=version,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    model: str,
    version: str,
    *,
    client: AuthenticatedClient,
    body: DistillationRequest,
) -> Distillation | ErrorResponse | None:
    """Distill a version

     Queue a distillation of this version (the teacher) into a new version `into`, which the caller must
    be able to write: a runner that distills claims it under a lease, trains a student with fewer layers
    on the teacher's outputs, checkpoints every few minutes (a runner that dies loses at most one
    interval)
    and reports progress; the student is committed as a new version with its lineage and report, and
    runs
    through the normal pipeline.

    Args:
        namespace (str):
        model (str):
        version (str):
        body (DistillationRequest): `POST
            /api/v1/models/{namespace}/{model}/versions/{version}/distillations`: distill that
            version.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Distillation | ErrorResponse
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            model=model,
            version=version,
            client=client,
            body=body,
        )
    ).parsed
