"""The sandbox's day clock: which day is "today" in the sandbox's world.

Data exists for every day before today; today itself is still happening and is never served.
A static sandbox (the default) stands on the day after its configured range for ever, so its
answers never change. An evolving one moves on request, or with the real date, and the world
simulates every day it leaves behind (`pipelines.altegio.sandbox.evolve`).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

# The moment a write happens on a clock that does not follow the wall clock: noon of today in
# the chain's zone, so the same sequence of writes stamps the same timestamps on every run.
WRITE_TIME = time(12)


@dataclass
class DayClock:
    """Today's date, whether it may move, and whether it follows the real date."""

    today: date
    moves: bool = False
    follows_wall_clock: bool = False

    def now(self, zone: ZoneInfo) -> datetime:
        """The current moment in `zone`: the real time on a wall clock, else noon of today."""
        if self.follows_wall_clock:
            return datetime.now(zone)
        return datetime.combine(self.today, WRITE_TIME, zone)

    def due(self) -> date | None:
        """The real date when a wall clock has fallen behind it, else None."""
        if not self.follows_wall_clock:
            return None
        real = wall_date()
        return real if real > self.today else None

    def snapshot(self) -> dict[str, object]:
        """What `GET /_sandbox/clock` shows."""
        return {
            "today": self.today.isoformat(),
            "moves": self.moves,
            "follows_wall_clock": self.follows_wall_clock,
        }


def wall_date() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()
