"""The findings of a check and how they read: one line per finding, grouped by area, then a
count. Library code returns a :class:`Report`; only the CLI prints it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARN = "warning"
#: The areas in the order the report shows them.
AREAS = ("feeds", "site", "message", "a11y", "settings")
_LABEL = {ERROR: "ERROR", WARN: "WARN"}
#: How many other files a merged line names before it only counts them.
_NAMED_OTHERS = 3


@dataclass(frozen=True)
class Finding:
    """One problem: ``file`` is a path in the output folder, an issue variant (``issue-3/geneva``),
    a template or a setting; ``where`` says where inside it (a line, an entry, an element)."""

    level: str
    area: str
    file: str
    what: str
    where: str = ""
    also: tuple[str, ...] = ()  # other files with the very same finding

    @property
    def line(self) -> str:
        text = f"{_LABEL[self.level]} {self.area} {self.file}: {self.what}"
        if self.where:
            text += f", {self.where}"
        if self.also:
            if len(self.also) <= _NAMED_OTHERS:
                text += f" (also {', '.join(self.also)})"
            else:
                text += f" (and {len(self.also)} more files)"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "area": self.area,
            "file": self.file,
            "what": self.what,
            "where": self.where,
            "also": list(self.also),
            "line": self.line,
        }


@dataclass
class Report:
    """Findings as they were added; :attr:`findings` gives them grouped and merged."""

    raw: list[Finding] = field(default_factory=list)

    def add(self, level: str, area: str, file: str, what: str, where: str = "") -> None:
        assert level in _LABEL and area in AREAS, (level, area)
        self.raw.append(Finding(level, area, file, what, where))

    def error(self, area: str, file: str, what: str, where: str = "") -> None:
        self.add(ERROR, area, file, what, where)

    def warn(self, area: str, file: str, what: str, where: str = "") -> None:
        self.add(WARN, area, file, what, where)

    def extend(self, findings: Iterable[Finding]) -> None:
        self.raw.extend(findings)

    @property
    def findings(self) -> list[Finding]:
        """Grouped by area (in :data:`AREAS` order), errors before warnings, then by file. The
        same finding (level, area, what) in several files is shown for the first file only, its
        first line naming the others: a template's fault on 10,000 pages reads as one line."""
        merged: dict[tuple[str, str, str], list[Finding]] = {}
        for finding in self.raw:
            merged.setdefault((finding.level, finding.area, finding.what), []).append(finding)
        out = []
        for group in merged.values():
            first = group[0]
            others = tuple(dict.fromkeys(f.file for f in group if f.file != first.file))
            wheres = dict.fromkeys(f.where for f in group if f.file == first.file)
            for index, where in enumerate(wheres):
                also = others if index == 0 else ()
                out.append(Finding(first.level, first.area, first.file, first.what, where, also))
        out.sort(key=lambda f: (AREAS.index(f.area), f.level != ERROR, f.file))
        return out

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.level == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == WARN)

    def summary(self) -> str:
        return f"check: {_count(self.errors, 'error')}, {_count(self.warnings, 'warning')}"

    def lines(self) -> list[str]:
        """The report as printed: one line per finding, then the summary line."""
        return [f.line for f in self.findings] + [self.summary()]

    def as_json(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [f.as_json() for f in self.findings],
            "summary": self.summary(),
        }


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
