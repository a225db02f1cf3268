"""Test setup: 8 CPU devices, so meshes and sharding are exercised for real."""

import os
import signal

# Must happen before jax is imported anywhere.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# A test run started in the background by a non-interactive shell (`.ci/run &`) inherits
# SIGINT ignored: Python then installs no KeyboardInterrupt handler and passes the ignoring on
# to every subprocess, and the Ctrl-C tests would test nothing. Put Python's own handler back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
  signal.signal(signal.SIGINT, signal.default_int_handler)

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _eight_devices():
  assert jax.device_count() == 8, "tests expect 8 host devices (see tests/conftest.py)"
