from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.blob_problem import BlobProblem
    from ..models.orphan_object import OrphanObject


T = TypeVar("T", bound="StoreCheckReport")


@_attrs_define
class StoreCheckReport:
    """
    Attributes:
        blobs_checked (int): Blob rows compared with the store.
        duration_ms (int):
        objects_listed (int): Objects the store listed.
        orphan_count (int):
        orphans (list[OrphanObject]):
        problem_count (int): The lists above stop at 1,000 entries each; the counts do not.
        problems (list[BlobProblem]):
        repair (bool):
        verify (bool):
        versions_damaged (list[str]): Versions marked damaged by this run.
        versions_restored (list[str]): Versions whose blobs are all whole again, no longer damaged.
    """

    blobs_checked: int
    duration_ms: int
    objects_listed: int
    orphan_count: int
    orphans: list[OrphanObject]
    problem_count: int
    problems: list[BlobProblem]
    repair: bool
    verify: bool
    versions_damaged: list[str]
    versions_restored: list[str]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        blobs_checked = self.blobs_checked

        duration_ms = self.duration_ms

        objects_listed = self.objects_listed

        orphan_count = self.orphan_count

        orphans = []
        for orphans_item_data in self.orphans:
            orphans_item = orphans_item_data.to_dict()
            orphans.append(orphans_item)

        problem_count = self.problem_count

        problems = []
        for problems_item_data in self.problems:
            problems_item = problems_item_data.to_dict()
            problems.append(problems_item)

        repair = self.repair

        verify = self.verify

        versions_damaged = self.versions_damaged

        versions_restored = self.versions_restored

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "blobs_checked": blobs_checked,
                "duration_ms": duration_ms,
                "objects_listed": objects_listed,
                "orphan_count": orphan_count,
                "orphans": orphans,
                "problem_count": problem_count,
                "problems": problems,
                "repair": repair,
                "verify": verify,
                "versions_damaged": versions_damaged,
                "versions_restored": versions_restored,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.blob_problem import BlobProblem
        from ..models.orphan_object import OrphanObject

        d = dict(src_dict)
        blobs_checked = d.pop("blobs_checked")

        duration_ms = d.pop("duration_ms")

        objects_listed = d.pop("objects_listed")

        orphan_count = d.pop("orphan_count")

        orphans = []
        _orphans = d.pop("orphans")
        for orphans_item_data in _orphans:
            orphans_item = OrphanObject.from_dict(orphans_item_data)

            orphans.append(orphans_item)

        problem_count = d.pop("problem_count")

        problems = []
        _problems = d.pop("problems")
        for problems_item_data in _problems:
            problems_item = BlobProblem.from_dict(problems_item_data)

            problems.append(problems_item)

        repair = d.pop("repair")

        verify = d.pop("verify")

        versions_damaged = cast(list[str], d.pop("versions_damaged"))

        versions_restored = cast(list[str], d.pop("versions_restored"))

        store_check_report = cls(
            blobs_checked=blobs_checked,
            duration_ms=duration_ms,
            objects_listed=objects_listed,
            orphan_count=orphan_count,
            orphans=orphans,
            problem_count=problem_count,
            problems=problems,
            repair=repair,
            verify=verify,
            versions_damaged=versions_damaged,
            versions_restored=versions_restored,
        )

        store_check_report.additional_properties = d
        return store_check_report

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
