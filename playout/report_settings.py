"""The ``reports:`` section of schedule.yaml: plays per week, department quotas.

Apart from the report itself (``playout.reports``), so that reading the config (``playout config``,
``playout relay-off`` after every stop) does not import the as-run log, intake and CSV code.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The bucket for items whose department is missing or not configured.
OTHER_DEPARTMENT = "khác"


class DepartmentQuota(BaseModel):
    """How many content items one department owes per month or per quarter."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    per: Literal["month", "quarter"]
    items: int = Field(default=1, ge=0)


def _default_departments() -> list[DepartmentQuota]:
    # The ward plans: each office 1 item a month, mass organisations 1 a quarter.
    monthly = (
        "Phòng Văn hóa – Xã hội",
        "Công an phường",
        "Trung tâm Phục vụ hành chính công",
        "Phòng Kinh tế, Hạ tầng và Đô thị",
        "Văn phòng HĐND và UBND",
    )
    return [DepartmentQuota(name=n, per="month") for n in monthly] + [
        DepartmentQuota(name="Ủy ban MTTQ Việt Nam phường", per="quarter")
    ]


class ReportSettings(BaseModel):
    """The ``reports:`` section of schedule.yaml."""

    model_config = ConfigDict(extra="forbid")

    plays_per_week_target: int = Field(default=12, ge=0)
    departments: list[DepartmentQuota] = Field(default_factory=_default_departments)

    @field_validator("departments")
    @classmethod
    def _unique_departments(cls, value: list[DepartmentQuota]) -> list[DepartmentQuota]:
        # Two entries that match the same items would count every item twice.
        seen: dict[str, str] = {}
        for quota in value:
            key = department_key(quota.name)
            if key in seen or key == department_key(OTHER_DEPARTMENT):
                raise ValueError(f"department listed twice or reserved: {quota.name!r}")
            seen[key] = quota.name
        return value


_DASHES = re.compile(r"[\u2010-\u2015\u2212-]")


def department_key(name: str | None) -> str:
    # Offices type their names by hand: old/new tone placement (hóa/hoá, Ủy/Uỷ), decomposed accents, en dash
    # or hyphen, doubled spaces.  Comparing without diacritics absorbs all of it; the settings validator
    # refuses two departments that would then collide.
    text = unicodedata.normalize("NFD", name or "").casefold().replace("đ", "d")
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _DASHES.sub("-", text)
    text = re.sub(r"\s*-\s*", " - ", text)
    return " ".join(text.split())
