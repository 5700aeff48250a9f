from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="DatasetRequest")


@_attrs_define
class DatasetRequest:
    """A dataset: a kiln version holding it (`reference`), or an external one (`uri`, with its digest if known).

    Attributes:
        reference (None | str | Unset): A kiln version holding the dataset, `namespace/model:version` (the pusher must
            be able to read it):
            the server records its files' digests. Either this or `uri`.
        sha256 (None | str | Unset):
        uri (None | str | Unset): An external dataset (`s3://...`, `https://...`, `hf://datasets/...`): 1 to 2048
            characters, with a
            scheme. Either this or `reference`.
    """

    reference: None | str | Unset = UNSET
    sha256: None | str | Unset = UNSET
    uri: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        reference: None | str | Unset
        if isinstance(self.reference, Unset):
            reference = UNSET
        else:
            reference = self.reference

        sha256: None | str | Unset
        if isinstance(self.sha256, Unset):
            sha256 = UNSET
        else:
            sha256 = self.sha256

        uri: None | str | Unset
        if isinstance(self.uri, Unset):
            uri = UNSET
        else:
            uri = self.uri

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if reference is not UNSET:
            field_dict["reference"] = reference
        if sha256 is not UNSET:
            field_dict["sha256"] = sha256
        if uri is not UNSET:
            field_dict["uri"] = uri

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_reference(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reference = _parse_reference(d.pop("reference", UNSET))

        def _parse_sha256(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sha256 = _parse_sha256(d.pop("sha256", UNSET))

        def _parse_uri(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        uri = _parse_uri(d.pop("uri", UNSET))

        dataset_request = cls(
            reference=reference,
            sha256=sha256,
            uri=uri,
        )

        return dataset_request
