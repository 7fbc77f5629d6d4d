"""Ready-made networks for the start page and the command line.

Every template builds a fresh Graph for any input shape (C, H, W) and number of classes; at its
default size each one matches its paper (and torchvision, where torchvision has it).
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.core.templates import classic, imagenet, inception, torchvision_nets
from cnnstudio.core.templates.base import InputShape, Template

TEMPLATES: dict[str, Template] = {
    template.id: template
    for template in (*classic.TEMPLATES, *imagenet.TEMPLATES, *inception.TEMPLATES,
                     *torchvision_nets.TEMPLATES)
}


class UnknownTemplate(KeyError):
    def __init__(self, template_id: str):
        available = ", ".join(TEMPLATES)
        super().__init__(f"unknown template {template_id!r}; available: {available}")
        self.template_id = template_id

    def __str__(self) -> str:
        return self.args[0]


def get_template(template_id: str) -> Template:
    try:
        return TEMPLATES[template_id]
    except KeyError:
        raise UnknownTemplate(template_id) from None


def build_template(
    template_id: str, input_shape: Sequence[int] | None = None, classes: int | None = None
) -> Graph:
    """Build a template's graph; input shape (C, H, W) and classes default to the template's."""
    template = get_template(template_id)
    shape: InputShape = template.default_input
    if input_shape is not None:
        channels, height, width = (int(v) for v in input_shape)
        shape = (channels, height, width)
    return template.build(shape, template.default_classes if classes is None else int(classes))


def new_project(
    template_id: str,
    input_shape: Sequence[int] | None = None,
    classes: int | None = None,
    dataset: dict | None = None,
) -> Project:
    """A new project from a template: its graph, description and recommended training settings."""
    template = get_template(template_id)
    return Project.new(
        build_template(template_id, input_shape, classes),
        name=template.title,
        description=template.description,
        template=template.id,
        dataset=dataset,
        training=dict(template.training),
    )


__all__ = ["TEMPLATES", "Template", "UnknownTemplate", "build_template", "get_template",
           "new_project"]
