"""The cost of a bulk membership operation: freeze N memberships of one chain through
`pipelines.writes.memberships` at the client's default rate budget (3 requests per second),
against a sandbox that enforces a 5 req/s per-client limit (the API's folklore limit).

    .venv/bin/python -m benchmarks.bulk_freeze [N]

Prints requests (by endpoint), wall seconds, 429s and what the journal recorded, as JSON.
"""

import json
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from pipelines.altegio.client import AltegioClient, ClientSettings, Credentials
from pipelines.altegio.http import DEFAULT_RATE_LIMIT
from pipelines.altegio.sandbox import SandboxConfig, serve
from pipelines.altegio.writer import Writer
from pipelines.writes import memberships as bulk
from pipelines.writes.journal import Journal

CONFIG = SandboxConfig(
    seed=7,
    chains=1,
    start=date(2025, 11, 1),
    end=date(2026, 1, 31),
    memberships_per_day=20,
    transactions_per_day=0,
    rate_limit=5.0,
)


def main(count: int = 500) -> dict[str, object]:
    with serve(CONFIG) as server, tempfile.TemporaryDirectory() as tmp:
        chain_id = server.dataset.chain_ids()[0]
        today = server.dataset.clock.today
        candidates = [
            m["id"]
            for m in server.dataset.live_memberships(chain_id)
            if not m["is_frozen"]
            and m["type"]["allow_freeze"]
            and (m["type"]["freeze_limit"] == 0 or m["type"]["freeze_limit_unit_id"] > 1)
        ][:count]
        if len(candidates) < count:
            raise SystemExit(f"only {len(candidates)} freezable memberships in the sandbox")
        creds = server.credentials
        settings = ClientSettings(
            base_url=server.base_url,
            credentials=Credentials(partner_token=creds.partner_token, user_token=creds.user_token),
            rate_limit=DEFAULT_RATE_LIMIT,
            budget_dir=Path(tmp),
        )
        with AltegioClient(settings) as client:
            started = time.monotonic()
            chain = client.list_chains([chain_id])[0]
            writer = Writer(client)
            change = bulk.BulkChange(bulk.Change.FREEZE, till=today + timedelta(days=3))
            plan = bulk.plan_bulk(writer, chain, change, candidates, today=today)
            # Includes the re-read of every target that confirms the writes and refreshes the lake.
            result = bulk.apply_bulk(writer, Journal(Path(tmp)), plan, progress=False)
            seconds = time.monotonic() - started
            stats = client.stats.snapshot()
        assert result.batch is not None and result.batch.ok and not result.unconfirmed
        return {
            "memberships": count,
            "rate_limit_rps": DEFAULT_RATE_LIMIT,
            "requests": stats.requests,
            "requests_by_endpoint": {
                name: ep.requests for name, ep in sorted(stats.by_endpoint.items())
            },
            "http_429": stats.http_429,
            "wall_s": round(seconds, 1),
            "journal": result.batch.counts(),
            "sandbox_freezes_received": len(
                [e for e in server.requests.entries() if e["operation"] == "membership_freeze"]
            ),
        }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500), indent=2))
