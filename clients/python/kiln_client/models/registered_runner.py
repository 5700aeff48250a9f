from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="RegisteredRunner")


@_attrs_define
class RegisteredRunner:
    """The answer to a registration: the runner's id and the timing it must keep.

    Attributes:
        heartbeat_seconds (int): How often to heartbeat.
        id (str):
        lease_seconds (int): A claimed job is lost unless a heartbeat extends it within this many seconds.
    """

    heartbeat_seconds: int
    id: str
    lease_seconds: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        heartbeat_seconds = self.heartbeat_seconds

        id = self.id

        lease_seconds = self.lease_seconds

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "heartbeat_seconds": heartbeat_seconds,
                "id": id,
                "lease_seconds": lease_seconds,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        heartbeat_seconds = d.pop("heartbeat_seconds")

        id = d.pop("id")

        lease_seconds = d.pop("lease_seconds")

        registered_runner = cls(
            heartbeat_seconds=heartbeat_seconds,
            id=id,
            lease_seconds=lease_seconds,
        )

        registered_runner.additional_properties = d
        return registered_runner

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
