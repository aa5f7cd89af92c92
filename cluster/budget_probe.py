"""One process's share of the Redis budget check: take N slots of a shared budget, print each
slot's time (on the Redis clock) as a JSON list.

    python -m cluster.budget_probe REDIS_URL KEY RATE N
"""

import json
import sys
import time

from pipelines.altegio.http import RateBudget
from pipelines.altegio.http.redis_budget import RedisStore


def main() -> int:
    url, key, rate, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    budget = RateBudget(rate, store=RedisStore(url, key))
    slots = []
    for _ in range(count):
        slot, wait = budget.reserve()
        slots.append(slot)
        time.sleep(wait)  # as acquire() does: the next reservation comes after this slot
    print(json.dumps(slots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
