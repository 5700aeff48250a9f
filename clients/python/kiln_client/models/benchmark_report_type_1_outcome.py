from enum import StrEnum


class BenchmarkReportType1Outcome(StrEnum):
    FAILED = "failed"

    def __str__(self) -> str:
        return str(self.value)
