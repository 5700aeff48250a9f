"""Contains all the data models used in inputs/outputs"""

from .access_token import AccessToken
from .alias_event import AliasEvent
from .alias_view import AliasView
from .api_token_credentials import ApiTokenCredentials
from .audit_entry import AuditEntry
from .benchmark_job import BenchmarkJob
from .benchmark_report_type_0 import BenchmarkReportType0
from .benchmark_report_type_0_outcome import BenchmarkReportType0Outcome
from .benchmark_report_type_1 import BenchmarkReportType1
from .benchmark_report_type_1_outcome import BenchmarkReportType1Outcome
from .benchmark_result import BenchmarkResult
from .benchmark_result_engine_options import BenchmarkResultEngineOptions
from .benchmark_result_input_shapes import BenchmarkResultInputShapes
from .blob_info import BlobInfo
from .blob_problem import BlobProblem
from .collection_report import CollectionReport
from .collection_request import CollectionRequest
from .create_namespace_request import CreateNamespaceRequest
from .create_token_request import CreateTokenRequest
from .create_upload_request import CreateUploadRequest
from .create_user_request import CreateUserRequest
from .create_version_request import CreateVersionRequest
from .created_token import CreatedToken
from .created_webhook import CreatedWebhook
from .dataset_request import DatasetRequest
from .deployment_manifest import DeploymentManifest
from .derived_version import DerivedVersion
from .distillation import Distillation
from .distillation_comparison import DistillationComparison
from .distillation_job import DistillationJob
from .distillation_progress import DistillationProgress
from .distillation_report_type_0 import DistillationReportType0
from .distillation_request import DistillationRequest
from .distillation_result_type_0_outcome import DistillationResultType0Outcome
from .distillation_result_type_0_report import DistillationResultType0Report
from .distillation_result_type_1 import DistillationResultType1
from .distillation_result_type_1_outcome import DistillationResultType1Outcome
from .distillation_state import DistillationState
from .engine_info import EngineInfo
from .error_body import ErrorBody
from .error_response import ErrorResponse
from .file_entry import FileEntry
from .flagged_file import FlaggedFile
from .generation_result import GenerationResult
from .health_check import HealthCheck
from .health_response import HealthResponse
from .heartbeat_ack import HeartbeatAck
from .job_state import JobState
from .jwks_response_200 import JwksResponse200
from .latency_pair import LatencyPair
from .lineage import Lineage
from .lineage_dataset import LineageDataset
from .lineage_hyperparameters_type_0 import LineageHyperparametersType0
from .lineage_link import LineageLink
from .lineage_parent import LineageParent
from .lineage_request import LineageRequest
from .lineage_request_hyperparameters_type_0 import LineageRequestHyperparametersType0
from .list_models_sort import ListModelsSort
from .list_namespace_models_sort import ListNamespaceModelsSort
from .manifest_file import ManifestFile
from .manifest_response import ManifestResponse
from .manifest_variant import ManifestVariant
from .manifest_variant_passes_type_0_item import ManifestVariantPassesType0Item
from .manifest_variant_validation_type_0 import ManifestVariantValidationType0
from .me import Me
from .member import Member
from .missing_blobs_request import MissingBlobsRequest
from .missing_blobs_response import MissingBlobsResponse
from .model_detail import ModelDetail
from .model_retention_rule import ModelRetentionRule
from .model_summary import ModelSummary
from .model_usage import ModelUsage
from .namespace_settings import NamespaceSettings
from .namespace_summary import NamespaceSummary
from .namespace_usage import NamespaceUsage
from .new_webhook import NewWebhook
from .orphan_object import OrphanObject
from .parent_request import ParentRequest
from .password_credentials import PasswordCredentials
from .pipeline_job import PipelineJob
from .pipeline_job_report_type_0 import PipelineJobReportType0
from .pipeline_options import PipelineOptions
from .pipeline_options_tolerances_type_0 import PipelineOptionsTolerancesType0
from .pipeline_step import PipelineStep
from .producer import Producer
from .provenance import Provenance
from .quota import Quota
from .quota_check import QuotaCheck
from .quota_check_file import QuotaCheckFile
from .quota_check_request import QuotaCheckRequest
from .registered_runner import RegisteredRunner
from .retention_outcome import RetentionOutcome
from .retention_rule import RetentionRule
from .retention_rules import RetentionRules
from .retention_run import RetentionRun
from .retired_version import RetiredVersion
from .role import Role
from .rotated_jwt_key import RotatedJwtKey
from .runner_heartbeat import RunnerHeartbeat
from .runner_registration import RunnerRegistration
from .runner_state import RunnerState
from .runner_view import RunnerView
from .serving_report import ServingReport
from .serving_view import ServingView
from .set_alias_request import SetAliasRequest
from .set_member_request import SetMemberRequest
from .set_visibility_request import SetVisibilityRequest
from .store_check_report import StoreCheckReport
from .store_check_request import StoreCheckRequest
from .tensor_signature import TensorSignature
from .token_info import TokenInfo
from .update_model_request import UpdateModelRequest
from .upload_session import UploadSession
from .user_info import UserInfo
from .variant_detail import VariantDetail
from .variant_detail_passes_type_0_item import VariantDetailPassesType0Item
from .variant_detail_validation_type_0 import VariantDetailValidationType0
from .variant_origin import VariantOrigin
from .variant_status import VariantStatus
from .version_detail import VersionDetail
from .version_status import VersionStatus
from .version_summary import VersionSummary
from .visibility import Visibility
from .webhook_attempt import WebhookAttempt
from .webhook_deliveries import WebhookDeliveries
from .webhook_delivery import WebhookDelivery
from .webhook_delivery_state import WebhookDeliveryState
from .webhook_event_type import WebhookEventType
from .webhook_subscription import WebhookSubscription
from .webhook_subscriptions import WebhookSubscriptions
from .webhook_update import WebhookUpdate

__all__ = (
    "AccessToken",
    "AliasEvent",
    "AliasView",
    "ApiTokenCredentials",
    "AuditEntry",
    "BenchmarkJob",
    "BenchmarkReportType0",
    "BenchmarkReportType0Outcome",
    "BenchmarkReportType1",
    "BenchmarkReportType1Outcome",
    "BenchmarkResult",
    "BenchmarkResultEngineOptions",
    "BenchmarkResultInputShapes",
    "BlobInfo",
    "BlobProblem",
    "CollectionReport",
    "CollectionRequest",
    "CreateNamespaceRequest",
    "CreateTokenRequest",
    "CreateUploadRequest",
    "CreateUserRequest",
    "CreateVersionRequest",
    "CreatedToken",
    "CreatedWebhook",
    "DatasetRequest",
    "DeploymentManifest",
    "DerivedVersion",
    "Distillation",
    "DistillationComparison",
    "DistillationJob",
    "DistillationProgress",
    "DistillationReportType0",
    "DistillationRequest",
    "DistillationResultType0Outcome",
    "DistillationResultType0Report",
    "DistillationResultType1",
    "DistillationResultType1Outcome",
    "DistillationState",
    "EngineInfo",
    "ErrorBody",
    "ErrorResponse",
    "FileEntry",
    "FlaggedFile",
    "GenerationResult",
    "HealthCheck",
    "HealthResponse",
    "HeartbeatAck",
    "JobState",
    "JwksResponse200",
    "LatencyPair",
    "Lineage",
    "LineageDataset",
    "LineageHyperparametersType0",
    "LineageLink",
    "LineageParent",
    "LineageRequest",
    "LineageRequestHyperparametersType0",
    "ListModelsSort",
    "ListNamespaceModelsSort",
    "ManifestFile",
    "ManifestResponse",
    "ManifestVariant",
    "ManifestVariantPassesType0Item",
    "ManifestVariantValidationType0",
    "Me",
    "Member",
    "MissingBlobsRequest",
    "MissingBlobsResponse",
    "ModelDetail",
    "ModelRetentionRule",
    "ModelSummary",
    "ModelUsage",
    "NamespaceSettings",
    "NamespaceSummary",
    "NamespaceUsage",
    "NewWebhook",
    "OrphanObject",
    "ParentRequest",
    "PasswordCredentials",
    "PipelineJob",
    "PipelineJobReportType0",
    "PipelineOptions",
    "PipelineOptionsTolerancesType0",
    "PipelineStep",
    "Producer",
    "Provenance",
    "Quota",
    "QuotaCheck",
    "QuotaCheckFile",
    "QuotaCheckRequest",
    "RegisteredRunner",
    "RetentionOutcome",
    "RetentionRule",
    "RetentionRules",
    "RetentionRun",
    "RetiredVersion",
    "Role",
    "RotatedJwtKey",
    "RunnerHeartbeat",
    "RunnerRegistration",
    "RunnerState",
    "RunnerView",
    "ServingReport",
    "ServingView",
    "SetAliasRequest",
    "SetMemberRequest",
    "SetVisibilityRequest",
    "StoreCheckReport",
    "StoreCheckRequest",
    "TensorSignature",
    "TokenInfo",
    "UpdateModelRequest",
    "UploadSession",
    "UserInfo",
    "VariantDetail",
    "VariantDetailPassesType0Item",
    "VariantDetailValidationType0",
    "VariantOrigin",
    "VariantStatus",
    "VersionDetail",
    "VersionStatus",
    "VersionSummary",
    "Visibility",
    "WebhookAttempt",
    "WebhookDeliveries",
    "WebhookDelivery",
    "WebhookDeliveryState",
    "WebhookEventType",
    "WebhookSubscription",
    "WebhookSubscriptions",
    "WebhookUpdate",
)
