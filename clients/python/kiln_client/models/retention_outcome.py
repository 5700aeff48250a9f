from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.retired_version import RetiredVersion


T = TypeVar("T", bound="RetentionOutcome")


@_attrs_define
class RetentionOutcome:
    """
    Attributes:
        deleted (list[RetiredVersion]): Oldest first.
        dry_run (bool):
        kept (int): Versions the rules keep.
    """

    deleted: list[RetiredVersion]
    dry_run: bool
    kept: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        deleted = []
        for deleted_item_data in self.deleted:
            deleted_item = deleted_item_data.to_dict()
            deleted.append(deleted_item)

        dry_run = self.dry_run

        kept = self.kept

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "deleted": deleted,
                "dry_run": dry_run,
                "kept": kept,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.retired_version import RetiredVersion

        d = dict(src_dict)
        deleted = []
        _deleted = d.pop("deleted")
        for deleted_item_data in _deleted:
            deleted_item = RetiredVersion.from_dict(deleted_item_data)

            deleted.append(deleted_item)

        dry_run = d.pop("dry_run")

        kept = d.pop("kept")

        retention_outcome = cls(
            deleted=deleted,
            dry_run=dry_run,
            kept=kept,
        )

        retention_outcome.additional_properties = d
        return retention_outcome

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
