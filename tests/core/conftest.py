import pytest

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import new_project


@pytest.fixture
def course() -> Graph:
    """The course's example network (CONV1 … FC4, output), a fresh copy for each test."""
    return new_project("course-example").graph
