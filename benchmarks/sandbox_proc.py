"""The benchmark's sandbox process: `altegio-loyalty sandbox` with a rendered-row cache large
enough to hold a whole benchmark size, so that after one warm-up pass every contender is
served from the same warm cache (the sandbox's own generation cost is then nobody's)."""

import argparse

from pipelines.altegio.sandbox import cli
from pipelines.altegio.sandbox import server as sandbox_server


def main() -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    parser.add_argument("--cache-rows", type=int, default=sandbox_server.TX_CACHE_ROWS)
    args = parser.parse_args()
    sandbox_server.TX_CACHE_ROWS = args.cache_rows
    return cli.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
