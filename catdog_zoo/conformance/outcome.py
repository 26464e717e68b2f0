"""What the conformance kit says: one :class:`Outcome` per check (PASS, FAIL or SKIP with one line of why), and
a :class:`Report` per model gathering them, printed by ``catdog-zoo check-plugin`` and raised by
``catdog_zoo.check_plugin``."""

from __future__ import annotations

from dataclasses import dataclass, field

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


def passed(why: str) -> tuple:
    return PASS, why


def failed(why: str) -> tuple:
    return FAIL, why


def skipped(why: str) -> tuple:
    return SKIP, why


@dataclass(frozen=True)
class Outcome:
    """One check of one model: its name (``build 3 classes 96x128``), PASS/FAIL/SKIP, why, and its seconds."""

    check: str
    status: str
    why: str
    seconds: float = 0.0

    def line(self, width: int = 0) -> str:
        return f"{self.status}  {self.check.ljust(width)}  {self.why}"

    def to_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "why": self.why, "seconds": round(self.seconds, 3)}


@dataclass
class Report:
    """Every check of one model, in the order they ran."""

    model: str  # the name as the registry knows it (distribution:name when it has one)
    outcomes: list = field(default_factory=list)

    def with_status(self, status: str) -> list:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.with_status(FAIL)

    def summary(self) -> str:
        seconds = sum(o.seconds for o in self.outcomes)
        return (f"{self.model}: {len(self.with_status(PASS))} passed, {len(self.with_status(FAIL))} failed, "
                f"{len(self.with_status(SKIP))} skipped ({seconds:.1f} s)")

    def lines(self) -> list:
        width = max((len(o.check) for o in self.outcomes), default=0)
        return [o.line(width) for o in self.outcomes]

    def failures(self) -> str:
        """Every failed check, one per line: the text of the pytest helper's AssertionError."""
        return "\n".join(f"{self.model}: {o.check}: {o.why}" for o in self.with_status(FAIL))

    def to_dict(self) -> dict:
        return {"model": self.model, "ok": self.ok, "passed": len(self.with_status(PASS)),
                "failed": len(self.with_status(FAIL)), "skipped": len(self.with_status(SKIP)),
                "checks": [o.to_dict() for o in self.outcomes]}
