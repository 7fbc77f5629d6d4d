"""MkDocs hooks (mkdocs.yml `hooks:`): the generated reference pages and the facts of the
written pages, made from the code at every build. Nothing generated is written into docs/."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_facts  # noqa: E402  (beside this file, found through the path above)
import gen_reference  # noqa: E402

_facts: dict[str, str] = {}


def on_pre_build(config) -> None:
    _facts.clear()
    _facts.update(gen_facts.facts(Path(config.docs_dir)))


def on_files(files, config):
    for path, text in gen_reference.reference_pages().items():
        files.append(File.generated(config, path, content=text))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    try:
        return gen_facts.expand(markdown, _facts)
    except gen_facts.UnknownFact as err:
        raise PluginError(f"{page.file.src_uri}: {err}") from None
