from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.file_entry import FileEntry
    from ..models.lineage_request import LineageRequest
    from ..models.pipeline_options import PipelineOptions


T = TypeVar("T", bound="CreateVersionRequest")


@_attrs_define
class CreateVersionRequest:
    """Commit a version from blobs already uploaded. Identical content for an existing version is a no-op;
    different content (files, or a lineage that differs from the recorded one) is refused with 409.

        Attributes:
            files (list[FileEntry]): 1 to 100,000 files.
            version (str):
            lineage (LineageRequest | None | Unset):
            pipeline (None | PipelineOptions | Unset):
    """

    files: list[FileEntry]
    version: str
    lineage: LineageRequest | None | Unset = UNSET
    pipeline: None | PipelineOptions | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.lineage_request import LineageRequest
        from ..models.pipeline_options import PipelineOptions

        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        version = self.version

        lineage: dict[str, Any] | None | Unset
        if isinstance(self.lineage, Unset):
            lineage = UNSET
        elif isinstance(self.lineage, LineageRequest):
            lineage = self.lineage.to_dict()
        else:
            lineage = self.lineage

        pipeline: dict[str, Any] | None | Unset
        if isinstance(self.pipeline, Unset):
            pipeline = UNSET
        elif isinstance(self.pipeline, PipelineOptions):
            pipeline = self.pipeline.to_dict()
        else:
            pipeline = self.pipeline

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "files": files,
                "version": version,
            }
        )
        if lineage is not UNSET:
            field_dict["lineage"] = lineage
        if pipeline is not UNSET:
            field_dict["pipeline"] = pipeline

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.file_entry import FileEntry
        from ..models.lineage_request import LineageRequest
        from ..models.pipeline_options import PipelineOptions

        d = dict(src_dict)
        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = FileEntry.from_dict(files_item_data)

            files.append(files_item)

        version = d.pop("version")

        def _parse_lineage(data: object) -> LineageRequest | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                lineage_type_0 = LineageRequest.from_dict(data)

                return lineage_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LineageRequest | None | Unset, data)

        lineage = _parse_lineage(d.pop("lineage", UNSET))

        def _parse_pipeline(data: object) -> None | PipelineOptions | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                pipeline_type_0 = PipelineOptions.from_dict(data)

                return pipeline_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PipelineOptions | Unset, data)

        pipeline = _parse_pipeline(d.pop("pipeline", UNSET))

        create_version_request = cls(
            files=files,
            version=version,
            lineage=lineage,
            pipeline=pipeline,
        )

        return create_version_request
