from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="RetentionRule")


@_attrs_define
class RetentionRule:
    """Which versions to keep. A version is kept when any set field keeps it (and always while an alias
    names it); a rule with neither `keep_last` nor `keep_days` keeps everything.

        Attributes:
            keep_aliased_days (int | None | Unset): Keep versions an alias named at any time in the last D days (as well as
                those it names now).
            keep_days (int | None | Unset): Keep versions created within the last D days.
            keep_last (int | None | Unset): Keep the newest N versions.
    """

    keep_aliased_days: int | None | Unset = UNSET
    keep_days: int | None | Unset = UNSET
    keep_last: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        keep_aliased_days: int | None | Unset
        if isinstance(self.keep_aliased_days, Unset):
            keep_aliased_days = UNSET
        else:
            keep_aliased_days = self.keep_aliased_days

        keep_days: int | None | Unset
        if isinstance(self.keep_days, Unset):
            keep_days = UNSET
        else:
            keep_days = self.keep_days

        keep_last: int | None | Unset
        if isinstance(self.keep_last, Unset):
            keep_last = UNSET
        else:
            keep_last = self.keep_last

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if keep_aliased_days is not UNSET:
            field_dict["keep_aliased_days"] = keep_aliased_days
        if keep_days is not UNSET:
            field_dict["keep_days"] = keep_days
        if keep_last is not UNSET:
            field_dict["keep_last"] = keep_last

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_keep_aliased_days(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        keep_aliased_days = _parse_keep_aliased_days(d.pop("keep_aliased_days", UNSET))

        def _parse_keep_days(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        keep_days = _parse_keep_days(d.pop("keep_days", UNSET))

        def _parse_keep_last(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        keep_last = _parse_keep_last(d.pop("keep_last", UNSET))

        retention_rule = cls(
            keep_aliased_days=keep_aliased_days,
            keep_days=keep_days,
            keep_last=keep_last,
        )

        return retention_rule
