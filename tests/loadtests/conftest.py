"""Fixtures of the load-suite tests.

The unit tests use locust's statistics classes. Importing locust monkey-patches the whole
process with gevent unless LOCUST_SKIP_MONKEY_PATCH is set, and this pytest process runs
everyone's tests: import it here unpatched, then unset the variable again so the locust
subprocesses the integration tests start are patched as usual.
"""

import os

_was_set = "LOCUST_SKIP_MONKEY_PATCH" in os.environ
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
try:
    import locust.stats  # noqa: F401
finally:
    if not _was_set:
        del os.environ["LOCUST_SKIP_MONKEY_PATCH"]

from tests.hall.fixtures import hall, no_faults, pg, seeded  # noqa: E402

__all__ = ["hall", "no_faults", "pg", "seeded"]
