from enum import StrEnum


class ListNamespaceModelsSort(StrEnum):
    NAME = "name"
    UPDATED = "updated"

    def __str__(self) -> str:
        return str(self.value)
