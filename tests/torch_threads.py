"""One torch thread for a test module: the networks in these tests are small, and on a busy
two-core machine OpenMP threads that wait for each other make them many times slower.

Import a fixture into a test module (it is autouse and module-scoped, so the import alone applies
it to that module only); `one_torch_thread_then_wait` also waits, after the module, for the
inspection views' background work, so that no job outlives the module's run folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """torch uses one intra-op thread inside the block, its former count after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    with single_torch_thread():
        yield


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread_then_wait() -> Iterator[None]:
    from cnnstudio.ui.training.inspect.common import wait_for_background_work

    with single_torch_thread():
        yield
    wait_for_background_work()
