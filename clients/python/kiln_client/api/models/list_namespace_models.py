from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.list_namespace_models_sort import ListNamespaceModelsSort
from ...models.model_summary import ModelSummary
from ...types import UNSET, Response, Unset


def _get_kwargs(
    namespace: str,
    *,
    limit: int | Unset = UNSET,
    offset: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    prefix: str | Unset = UNSET,
    tag: str | Unset = UNSET,
    q: str | Unset = UNSET,
    has_variant: str | Unset = UNSET,
    sort: ListNamespaceModelsSort | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["offset"] = offset

    params["cursor"] = cursor

    params["prefix"] = prefix

    params["tag"] = tag

    params["q"] = q

    params["has_variant"] = has_variant

    json_sort: str | Unset = UNSET
    if not isinstance(sort, Unset):
        json_sort = sort.value

    params["sort"] = json_sort

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/namespaces/{namespace}/models".format(
            namespace=quote(str(namespace), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | list[ModelSummary] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in _response_200:
            response_200_item = ModelSummary.from_dict(response_200_item_data)

            response_200.append(response_200_item)

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
) -> Response[ErrorResponse | list[ModelSummary]]:
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
    limit: int | Unset = UNSET,
    offset: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    prefix: str | Unset = UNSET,
    tag: str | Unset = UNSET,
    q: str | Unset = UNSET,
    has_variant: str | Unset = UNSET,
    sort: ListNamespaceModelsSort | Unset = UNSET,
) -> Response[ErrorResponse | list[ModelSummary]]:
    """List a namespace's models

     The models of one namespace the caller can see, ordered by name, filtered like `GET /models`. A full
    page carries `Link: <...>; rel="next"` with the next page's cursor.

    Args:
        namespace (str):
        limit (int | Unset):
        offset (int | Unset):
        cursor (str | Unset):
        prefix (str | Unset):
        tag (str | Unset):
        q (str | Unset):
        has_variant (str | Unset):
        sort (ListNamespaceModelsSort | Unset): The order of a model listing.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | list[ModelSummary]]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        limit=limit,
        offset=offset,
        cursor=cursor,
        prefix=prefix,
        tag=tag,
        q=q,
        has_variant=has_variant,
        sort=sort,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    offset: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    prefix: str | Unset = UNSET,
    tag: str | Unset = UNSET,
    q: str | Unset = UNSET,
    has_variant: str | Unset = UNSET,
    sort: ListNamespaceModelsSort | Unset = UNSET,
) -> ErrorResponse | list[ModelSummary] | None:
    """List a namespace's models

     The models of one namespace the caller can see, ordered by name, filtered like `GET /models`. A full
    page carries `Link: <...>; rel="next"` with the next page's cursor.

    Args:
        namespace (str):
        limit (int | Unset):
        offset (int | Unset):
        cursor (str | Unset):
        prefix (str | Unset):
        tag (str | Unset):
        q (str | Unset):
        has_variant (str | Unset):
        sort (ListNamespaceModelsSort | Unset): The order of a model listing.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | list[ModelSummary]
    """

    return sync_detailed(
        namespace=namespace,
        client=client,
        limit=limit,
        offset=offset,
        cursor=cursor,
        prefix=prefix,
        tag=tag,
        q=q,
        has_variant=has_variant,
        sort=sort,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    offset: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    prefix: str | Unset = UNSET,
    tag: str | Unset = UNSET,
    q: str | Unset = UNSET,
    has_variant: str | Unset = UNSET,
    sort: ListNamespaceModelsSort | Unset = UNSET,
) -> Response[ErrorResponse | list[ModelSummary]]:
    """List a namespace's models

     The models of one namespace the caller can see, ordered by name, filtered like `GET /models`. A full
    page carries `Link: <...>; rel="next"` with the next page's cursor.

    Args:
        namespace (str):
        limit (int | Unset):
        offset (int | Unset):
        cursor (str | Unset):
        prefix (str | Unset):
        tag (str | Unset):
        q (str | Unset):
        has_variant (str | Unset):
        sort (ListNamespaceModelsSort | Unset): The order of a model listing.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | list[ModelSummary]]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        limit=limit,
        offset=offset,
        cursor=cursor,
        prefix=prefix,
        tag=tag,
        q=q,
        has_variant=has_variant,
        sort=sort,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = UNSET,
    offset: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
    prefix: str | Unset = UNSET,
    tag: str | Unset = UNSET,
    q: str | Unset = UNSET,
    has_variant: str | Unset = UNSET,
    sort: ListNamespaceModelsSort | Unset = UNSET,
) -> ErrorResponse | list[ModelSummary] | None:
    """List a namespace's models

     The models of one namespace the caller can see, ordered by name, filtered like `GET /models`. A full
    page carries `Link: <...>; rel="next"` with the next page's cursor.

    Args:
        namespace (str):
        limit (int | Unset):
        offset (int | Unset):
        cursor (str | Unset):
        prefix (str | Unset):
        tag (str | Unset):
        q (str | Unset):
        has_variant (str | Unset):
        sort (ListNamespaceModelsSort | Unset): The order of a model listing.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | list[ModelSummary]
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            client=client,
            limit=limit,
            offset=offset,
            cursor=cursor,
            prefix=prefix,
            tag=tag,
            q=q,
            has_variant=has_variant,
            sort=sort,
        )
    ).parsed
