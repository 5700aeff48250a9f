from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="CreateTokenRequest")


@_attrs_define
class CreateTokenRequest:
    """
    Attributes:
        name (str): A name to recognise the token by, e.g. `ci` or `laptop`: 1 to 64 characters (trimmed), no control
            characters.
        expires_in_days (int | None | Unset): Days until the token stops working, 1 to 3650 (ten years); none means it
            never expires.
        scopes (list[str] | Unset): `read`, `write`, `admin` (optionally `:NAMESPACE`), or `runner`. Scopes cap the
            user's roles, they never add to them. Default: `["write"]`.
    """

    name: str
    expires_in_days: int | None | Unset = UNSET
    scopes: list[str] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        expires_in_days: int | None | Unset
        if isinstance(self.expires_in_days, Unset):
            expires_in_days = UNSET
        else:
            expires_in_days = self.expires_in_days

        scopes: list[str] | Unset = UNSET
        if not isinstance(self.scopes, Unset):
            scopes = self.scopes

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
            }
        )
        if expires_in_days is not UNSET:
            field_dict["expires_in_days"] = expires_in_days
        if scopes is not UNSET:
            field_dict["scopes"] = scopes

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        name = d.pop("name")

        def _parse_expires_in_days(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        expires_in_days = _parse_expires_in_days(d.pop("expires_in_days", UNSET))

        scopes = cast(list[str], d.pop("scopes", UNSET))

        create_token_request = cls(
            name=name,
            expires_in_days=expires_in_days,
            scopes=scopes,
        )

        return create_token_request
