"""Hypothesis profiles for every suite (generated per-op suites included):
  ci        (default) 40 examples per property, derandomized: the same
            inputs on every run, so CI is fast and never flaky;
  thorough  500 random examples per property, for hunting bugs locally.
Choose with `pytest --hypothesis-profile thorough` or LOOM_HYPOTHESIS=thorough."""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=40, derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("LOOM_HYPOTHESIS", "ci"))
