"""The escalation engine: named modules that act on everything due, run in one loop per process."""
