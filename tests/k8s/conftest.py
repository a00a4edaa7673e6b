from collections.abc import Iterator

import pytest
from k8s_helpers import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    pytest.importorskip("kmock", reason="kmock is in the dev extra: pip install -e '.[dev]'")
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()
