from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.version_status import VersionStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.derived_version import DerivedVersion
    from ..models.file_entry import FileEntry
    from ..models.flagged_file import FlaggedFile
    from ..models.lineage import Lineage
    from ..models.pipeline_job import PipelineJob
    from ..models.variant_detail import VariantDetail


T = TypeVar("T", bound="VersionDetail")


@_attrs_define
class VersionDetail:
    """A committed version: `kiln show NS/MODEL:VERSION --json` prints exactly this.

    Attributes:
        created_at (datetime.datetime):
        files (list[FileEntry]):
        model (str):
        namespace (str):
        status (VersionStatus): Where a version is in its life: `pending` once committed, `processing` while its files
            are scanned, then
            `ready` as soon as the safety scans pass (the files are stored, versioned and signable; conversion,
            optimization and benchmarks go on after and add variants) or `failed` when a scan refused a file (its
            message says why). The files a user pushed are downloadable in every state.
        version (str):
        damage (None | str | Unset): Why the version is not served: the store check found a blob of it missing or wrong.
            Pushing the
            same files again and `kiln admin fsck --repair` restore it.
        derived (list[DerivedVersion] | Unset): Versions the caller may read whose lineage names this one (as a parent
            or a dataset), oldest
            first: at most 100; `derived_count` says how many in all.
        derived_count (int | Unset): How many versions the caller may read name this one in their lineage.
        flagged (list[FlaggedFile] | Unset): Files the scan would have refused, stored only because the namespace allows
            it: kiln never opens,
            converts or loads them.
        lineage (Lineage | None | Unset):
        pipeline (list[PipelineJob] | Unset): The pipeline's jobs, oldest first.
        variants (list[VariantDetail] | Unset): What the pipeline produced, by name.
    """

    created_at: datetime.datetime
    files: list[FileEntry]
    model: str
    namespace: str
    status: VersionStatus
    version: str
    damage: None | str | Unset = UNSET
    derived: list[DerivedVersion] | Unset = UNSET
    derived_count: int | Unset = UNSET
    flagged: list[FlaggedFile] | Unset = UNSET
    lineage: Lineage | None | Unset = UNSET
    pipeline: list[PipelineJob] | Unset = UNSET
    variants: list[VariantDetail] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.lineage import Lineage

        created_at = self.created_at.isoformat()

        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        model = self.model

        namespace = self.namespace

        status = self.status.value

        version = self.version

        damage: None | str | Unset
        if isinstance(self.damage, Unset):
            damage = UNSET
        else:
            damage = self.damage

        derived: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.derived, Unset):
            derived = []
            for derived_item_data in self.derived:
                derived_item = derived_item_data.to_dict()
                derived.append(derived_item)

        derived_count = self.derived_count

        flagged: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.flagged, Unset):
            flagged = []
            for flagged_item_data in self.flagged:
                flagged_item = flagged_item_data.to_dict()
                flagged.append(flagged_item)

        lineage: dict[str, Any] | None | Unset
        if isinstance(self.lineage, Unset):
            lineage = UNSET
        elif isinstance(self.lineage, Lineage):
            lineage = self.lineage.to_dict()
        else:
            lineage = self.lineage

        pipeline: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.pipeline, Unset):
            pipeline = []
            for pipeline_item_data in self.pipeline:
                pipeline_item = pipeline_item_data.to_dict()
                pipeline.append(pipeline_item)

        variants: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.variants, Unset):
            variants = []
            for variants_item_data in self.variants:
                variants_item = variants_item_data.to_dict()
                variants.append(variants_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "files": files,
                "model": model,
                "namespace": namespace,
                "status": status,
                "version": version,
            }
        )
        if damage is not UNSET:
            field_dict["damage"] = damage
        if derived is not UNSET:
            field_dict["derived"] = derived
        if derived_count is not UNSET:
            field_dict["derived_count"] = derived_count
        if flagged is not UNSET:
            field_dict["flagged"] = flagged
        if lineage is not UNSET:
            field_dict["lineage"] = lineage
        if pipeline is not UNSET:
            field_dict["pipeline"] = pipeline
        if variants is not UNSET:
            field_dict["variants"] = variants

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.derived_version import DerivedVersion
        from ..models.file_entry import FileEntry
        from ..models.flagged_file import FlaggedFile
        from ..models.lineage import Lineage
        from ..models.pipeline_job import PipelineJob
        from ..models.variant_detail import VariantDetail

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = FileEntry.from_dict(files_item_data)

            files.append(files_item)

        model = d.pop("model")

        namespace = d.pop("namespace")

        status = VersionStatus(d.pop("status"))

        version = d.pop("version")

        def _parse_damage(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        damage = _parse_damage(d.pop("damage", UNSET))

        _derived = d.pop("derived", UNSET)
        derived: list[DerivedVersion] | Unset = UNSET
        if _derived is not UNSET:
            derived = []
            for derived_item_data in _derived:
                derived_item = DerivedVersion.from_dict(derived_item_data)

                derived.append(derived_item)

        derived_count = d.pop("derived_count", UNSET)

        _flagged = d.pop("flagged", UNSET)
        flagged: list[FlaggedFile] | Unset = UNSET
        if _flagged is not UNSET:
            flagged = []
            for flagged_item_data in _flagged:
                flagged_item = FlaggedFile.from_dict(flagged_item_data)

                flagged.append(flagged_item)

        def _parse_lineage(data: object) -> Lineage | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                lineage_type_0 = Lineage.from_dict(data)

                return lineage_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Lineage | None | Unset, data)

        lineage = _parse_lineage(d.pop("lineage", UNSET))

        _pipeline = d.pop("pipeline", UNSET)
        pipeline: list[PipelineJob] | Unset = UNSET
        if _pipeline is not UNSET:
            pipeline = []
            for pipeline_item_data in _pipeline:
                pipeline_item = PipelineJob.from_dict(pipeline_item_data)

                pipeline.append(pipeline_item)

        _variants = d.pop("variants", UNSET)
        variants: list[VariantDetail] | Unset = UNSET
        if _variants is not UNSET:
            variants = []
            for variants_item_data in _variants:
                variants_item = VariantDetail.from_dict(variants_item_data)

                variants.append(variants_item)

        version_detail = cls(
            created_at=created_at,
            files=files,
            model=model,
            namespace=namespace,
            status=status,
            version=version,
            damage=damage,
            derived=derived,
            derived_count=derived_count,
            flagged=flagged,
            lineage=lineage,
            pipeline=pipeline,
            variants=variants,
        )

        version_detail.additional_properties = d
        return version_detail

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
