"""`make bench`: side-by-side figures for this pipeline, the download floor and dlt (issue 8).

Every contender runs in its own process against one sandbox process, so peak RSS is the
contender's own and the sandbox's CPU is not charged to it. Nothing here runs in the test
suite's assertions except the harness smoke test (`--quick`).
"""
