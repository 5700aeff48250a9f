from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ManifestFile")


@_attrs_define
class ManifestFile:
    """One file a deployment pulls: its bytes must hash to `sha256`.

    Attributes:
        path (str):
        sha256 (str): sha256 content digest
        size (int):
        uri (str): Where the registry serves it, relative to the server (`/api/v1/models/...`).
        flagged (None | str | Unset): Set for a file the scan would have refused (e.g. a pickle that could run code),
            stored only because
            its namespace allows it: kiln never opened it, and a deployment should not load it blindly.
    """

    path: str
    sha256: str
    size: int
    uri: str
    flagged: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        path = self.path

        sha256 = self.sha256

        size = self.size

        uri = self.uri

        flagged: None | str | Unset
        if isinstance(self.flagged, Unset):
            flagged = UNSET
        else:
            flagged = self.flagged

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "path": path,
                "sha256": sha256,
                "size": size,
                "uri": uri,
            }
        )
        if flagged is not UNSET:
            field_dict["flagged"] = flagged

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        path = d.pop("path")

        sha256 = d.pop("sha256")

        size = d.pop("size")

        uri = d.pop("uri")

        def _parse_flagged(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        flagged = _parse_flagged(d.pop("flagged", UNSET))

        manifest_file = cls(
            path=path,
            sha256=sha256,
            size=size,
            uri=uri,
            flagged=flagged,
        )

        manifest_file.additional_properties = d
        return manifest_file

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
