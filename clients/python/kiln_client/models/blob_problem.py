from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="BlobProblem")


@_attrs_define
class BlobProblem:
    """A recorded blob whose object is missing or not what was recorded.

    Attributes:
        digest (str): sha256 content digest
        problem (str): `missing`, `wrong_size` or `wrong_digest`.
        recorded_size (int):
        versions (list[str]): The versions holding it (`namespace/model:version`), which `repair` marks damaged.
        stored_size (int | None | Unset): What the store holds, when it holds something.
    """

    digest: str
    problem: str
    recorded_size: int
    versions: list[str]
    stored_size: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        digest = self.digest

        problem = self.problem

        recorded_size = self.recorded_size

        versions = self.versions

        stored_size: int | None | Unset
        if isinstance(self.stored_size, Unset):
            stored_size = UNSET
        else:
            stored_size = self.stored_size

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "digest": digest,
                "problem": problem,
                "recorded_size": recorded_size,
                "versions": versions,
            }
        )
        if stored_size is not UNSET:
            field_dict["stored_size"] = stored_size

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        digest = d.pop("digest")

        problem = d.pop("problem")

        recorded_size = d.pop("recorded_size")

        versions = cast(list[str], d.pop("versions"))

        def _parse_stored_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        stored_size = _parse_stored_size(d.pop("stored_size", UNSET))

        blob_problem = cls(
            digest=digest,
            problem=problem,
            recorded_size=recorded_size,
            versions=versions,
            stored_size=stored_size,
        )

        blob_problem.additional_properties = d
        return blob_problem

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
