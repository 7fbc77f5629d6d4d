"""A network nobody named takes its file's name, so its runs and exports are not all "Untitled"
(issue 14); a name the user gave is kept. The window applies the rule (tests/ui)."""

from __future__ import annotations

from pathlib import Path

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import DEFAULT_NAME, Project, name_from_file


def test_an_unnamed_network_takes_the_file_stem():
    assert Project.new(Graph()).name == DEFAULT_NAME
    assert name_from_file(DEFAULT_NAME, "/work/course.cnnproj") == "course"
    assert name_from_file(DEFAULT_NAME, Path("lab week 3.cnnproj")) == "lab week 3"
    assert name_from_file(DEFAULT_NAME, "/work/" + "n" * 300 + ".cnnproj") == "n" * 200


def test_a_name_the_user_gave_is_kept():
    assert name_from_file("My digits net", "/work/course.cnnproj") == "My digits net"


def test_a_file_without_a_usable_stem_keeps_the_default():
    assert name_from_file(DEFAULT_NAME, "/work/ .cnnproj") == DEFAULT_NAME
