from enum import StrEnum


class BenchmarkReportType0Outcome(StrEnum):
    SUCCEEDED = "succeeded"

    def __str__(self) -> str:
        return str(self.value)
