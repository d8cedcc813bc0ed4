import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.stackgraph import install_mocks  # noqa: E402


@pytest.fixture(autouse=True)
def pulumi_mocks():
    """A fresh mock runtime for every test, recording each resource the program registers."""
    return install_mocks()
