from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="AuditEntry")


@_attrs_define
class AuditEntry:
    """One audited mutation.

    Attributes:
        action (str):
        actor (str):
        at (datetime.datetime):
        detail (Any):
        target (str):
        remote_addr (None | str | Unset):
    """

    action: str
    actor: str
    at: datetime.datetime
    detail: Any
    target: str
    remote_addr: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        action = self.action

        actor = self.actor

        at = self.at.isoformat()

        detail = self.detail

        target = self.target

        remote_addr: None | str | Unset
        if isinstance(self.remote_addr, Unset):
            remote_addr = UNSET
        else:
            remote_addr = self.remote_addr

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "action": action,
                "actor": actor,
                "at": at,
                "detail": detail,
                "target": target,
            }
        )
        if remote_addr is not UNSET:
            field_dict["remote_addr"] = remote_addr

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        action = d.pop("action")

        actor = d.pop("actor")

        at = datetime.datetime.fromisoformat(d.pop("at"))

        detail = d.pop("detail")

        target = d.pop("target")

        def _parse_remote_addr(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        remote_addr = _parse_remote_addr(d.pop("remote_addr", UNSET))

        audit_entry = cls(
            action=action,
            actor=actor,
            at=at,
            detail=detail,
            target=target,
            remote_addr=remote_addr,
        )

        audit_entry.additional_properties = d
        return audit_entry

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
