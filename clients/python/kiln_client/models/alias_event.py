from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="AliasEvent")


@_attrs_define
class AliasEvent:
    """One move of an alias: who, when, from which version to which.

    Attributes:
        actor (str):
        alias (str):
        at (datetime.datetime):
        sequence (int): The sequence of the manifest this move issued.
        to (str):
        from_ (None | str | Unset):
    """

    actor: str
    alias: str
    at: datetime.datetime
    sequence: int
    to: str
    from_: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        actor = self.actor

        alias = self.alias

        at = self.at.isoformat()

        sequence = self.sequence

        to = self.to

        from_: None | str | Unset
        if isinstance(self.from_, Unset):
            from_ = UNSET
        else:
            from_ = self.from_

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "actor": actor,
                "alias": alias,
                "at": at,
                "sequence": sequence,
                "to": to,
            }
        )
        if from_ is not UNSET:
            field_dict["from"] = from_

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        actor = d.pop("actor")

        alias = d.pop("alias")

        at = datetime.datetime.fromisoformat(d.pop("at"))

        sequence = d.pop("sequence")

        to = d.pop("to")

        def _parse_from_(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        from_ = _parse_from_(d.pop("from", UNSET))

        alias_event = cls(
            actor=actor,
            alias=alias,
            at=at,
            sequence=sequence,
            to=to,
            from_=from_,
        )

        alias_event.additional_properties = d
        return alias_event

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
