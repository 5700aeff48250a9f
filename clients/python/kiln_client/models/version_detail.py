from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.version_status import VersionStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.file_entry import FileEntry
    from ..models.flagged_file import FlaggedFile
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
        flagged (list[FlaggedFile] | Unset): Files the scan would have refused, stored only because the namespace allows
            it: kiln never opens,
            converts or loads them.
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
    flagged: list[FlaggedFile] | Unset = UNSET
    pipeline: list[PipelineJob] | Unset = UNSET
    variants: list[VariantDetail] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
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

        flagged: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.flagged, Unset):
            flagged = []
            for flagged_item_data in self.flagged:
                flagged_item = flagged_item_data.to_dict()
                flagged.append(flagged_item)

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
        if flagged is not UNSET:
            field_dict["flagged"] = flagged
        if pipeline is not UNSET:
            field_dict["pipeline"] = pipeline
        if variants is not UNSET:
            field_dict["variants"] = variants

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.file_entry import FileEntry
        from ..models.flagged_file import FlaggedFile
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

        _flagged = d.pop("flagged", UNSET)
        flagged: list[FlaggedFile] | Unset = UNSET
        if _flagged is not UNSET:
            flagged = []
            for flagged_item_data in _flagged:
                flagged_item = FlaggedFile.from_dict(flagged_item_data)

                flagged.append(flagged_item)

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
            flagged=flagged,
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
