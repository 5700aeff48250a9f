from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.quota_check_file import QuotaCheckFile


T = TypeVar("T", bound="QuotaCheckRequest")


@_attrs_define
class QuotaCheckRequest:
    """The files a push is about to upload and commit, to check against the namespace's quota first.

    Attributes:
        files (list[QuotaCheckFile]):
        version (None | str | Unset):
    """

    files: list[QuotaCheckFile]
    version: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        version: None | str | Unset
        if isinstance(self.version, Unset):
            version = UNSET
        else:
            version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "files": files,
            }
        )
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.quota_check_file import QuotaCheckFile

        d = dict(src_dict)
        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = QuotaCheckFile.from_dict(files_item_data)

            files.append(files_item)

        def _parse_version(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        version = _parse_version(d.pop("version", UNSET))

        quota_check_request = cls(
            files=files,
            version=version,
        )

        return quota_check_request
