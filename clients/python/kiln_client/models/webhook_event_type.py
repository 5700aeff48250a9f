from enum import StrEnum


class WebhookEventType(StrEnum):
    ALIAS_MOVED = "alias.moved"
    BENCHMARK_COMPLETED = "benchmark.completed"
    MANIFEST_PUBLISHED = "manifest.published"
    VERSION_DELETED = "version.deleted"
    VERSION_FAILED = "version.failed"
    VERSION_READY = "version.ready"

    def __str__(self) -> str:
        return str(self.value)
