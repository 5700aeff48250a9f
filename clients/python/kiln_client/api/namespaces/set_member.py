from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.member import Member
from ...models.set_member_request import SetMemberRequest
from ...types import Response


def _get_kwargs(
    namespace: str,
    user: str,
    *,
    body: SetMemberRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/api/v1/namespaces/{namespace}/members/{user}".format(
            namespace=quote(str(namespace), safe=""),
            user=quote(str(user), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | Member | None:
    if response.status_code == 200:
        response_200 = Member.from_dict(response.json())

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
) -> Response[ErrorResponse | Member]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    user: str,
    *,
    client: AuthenticatedClient,
    body: SetMemberRequest,
) -> Response[ErrorResponse | Member]:
    """Set a member's role

     Add a member or change their role: reader, writer or admin (namespace admins; audited).

    Args:
        namespace (str):
        user (str):
        body (SetMemberRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | Member]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        user=user,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    user: str,
    *,
    client: AuthenticatedClient,
    body: SetMemberRequest,
) -> ErrorResponse | Member | None:
    """Set a member's role

     Add a member or change their role: reader, writer or admin (namespace admins; audited).

    Args:
        namespace (str):
        user (str):
        body (SetMemberRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | Member
    """

    return sync_detailed(
        namespace=namespace,
        user=user,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    user: str,
    *,
    client: AuthenticatedClient,
    body: SetMemberRequest,
) -> Response[ErrorResponse | Member]:
    """Set a member's role

     Add a member or change their role: reader, writer or admin (namespace admins; audited).

    Args:
        namespace (str):
        user (str):
        body (SetMemberRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | Member]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        user=user,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    user: str,
    *,
    client: AuthenticatedClient,
    body: SetMemberRequest,
) -> ErrorResponse | Member | None:
    """Set a member's role

     Add a member or change their role: reader, writer or admin (namespace admins; audited).

    Args:
        namespace (str):
        user (str):
        body (SetMemberRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | Member
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            user=user,
            client=client,
            body=body,
        )
    ).parsed
