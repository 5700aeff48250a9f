from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="UploadSession")


@_attrs_define
class UploadSession:
    """An upload session. Send chunks with `PATCH` and `Content-Range: bytes START-END/SIZE`, starting at
    `offset`; every chunk but the last must be a multiple of `part_size` bytes. Then `POST .../commit`.

        Attributes:
            created_at (datetime.datetime):
            digest (str): sha256 content digest
            id (str):
            offset (int): Bytes received and stored so far; the next chunk must start here.
            part_size (int): Chunks must be a multiple of this (except the last one).
            resumed (bool): True when this call found an unfinished session and continues it.
            size (int):
    """

    created_at: datetime.datetime
    digest: str
    id: str
    offset: int
    part_size: int
    resumed: bool
    size: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        digest = self.digest

        id = self.id

        offset = self.offset

        part_size = self.part_size

        resumed = self.resumed

        size = self.size

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "digest": digest,
                "id": id,
                "offset": offset,
                "part_size": part_size,
                "resumed": resumed,
                "size": size,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        digest = d.pop("digest")

        id = d.pop("id")

        offset = d.pop("offset")

        part_size = d.pop("part_size")

        resumed = d.pop("resumed")

        size = d.pop("size")

        upload_session = cls(
            created_at=created_at,
            digest=digest,
            id=id,
            offset=offset,
            part_size=part_size,
            resumed=resumed,
            size=size,
        )

        upload_session.additional_properties = d
        return upload_session

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
