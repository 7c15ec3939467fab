from tests.hall.fixtures import hall, no_faults, pg, seeded

__all__ = ["hall", "no_faults", "pg", "seeded"]
