"""pytest configuration: the ``slow`` marker (``pytest -m "not slow"`` skips those tests). Shared test
functions (running the CLI, one-line error checks, writing frontier files) live in ``tests/helpers.py``."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (pytest -m 'not slow' skips it)")
