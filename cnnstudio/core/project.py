"""Project files (.cnnproj): a network with its dataset and training settings, as JSON.

Loading checks everything and reports every problem with its place in the file
("blocks[3].params.kernel: ..."), so one look at the message is enough to repair a
hand-edited or damaged file. Loading never writes; saving is atomic (temporary file in the same
folder, fsync, rename), so a crash or a full disk leaves the previous file as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import json
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from cnnstudio.core import files, registry
from cnnstudio.core.file_checks import (
    list_field,
    ordered_params,
    read_block_params,
    read_block_type,
    read_position,
    show,
)
from cnnstudio.core.graph import Block, Edge, Graph, GraphError
from cnnstudio.core.module_files import modules_to_dict, read_modules
from cnnstudio.core.settings import DATASET, TRAINING, SettingsGroup

FORMAT = "cnnstudio-project"
SCHEMA_VERSION = 1
EXTENSION = ".cnnproj"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_BLOCKS = 10_000
MAX_CONNECTIONS = 50_000
MAX_PORT = 65_535
MAX_LISTED_PROBLEMS = 20
MAX_NAME = 200
DEFAULT_NAME = "Untitled"  # a network nobody named: it takes its file's name (name_from_file)

# schema n -> function turning a schema-n project dict into a schema-(n + 1) one. Applied in
# order to older files; the loader sets schema_version after each step.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}

StrPath = str | os.PathLike


class ProjectError(Exception):
    """A project that cannot be opened or saved; `problems` lists every reason, located."""

    def __init__(self, summary: str, problems: Sequence[str] = (), *, list_problems: bool = True):
        super().__init__(summary)
        self.summary = summary
        self.problems = list(problems)
        self._list_problems = list_problems

    def __str__(self) -> str:
        if not self._list_problems or not self.problems:
            return self.summary
        lines = [self.summary]
        lines += [f"  {p}" for p in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"  ... and {len(self.problems) - MAX_LISTED_PROBLEMS} more")
        return "\n".join(lines)

    @classmethod
    def single(cls, summary: str, reason: str) -> ProjectError:
        """One problem, already told by the summary ("cannot open 'x': the file is empty")."""
        return cls(f"{summary}: {reason}", [reason], list_problems=False)


@dataclass
class Project:
    graph: Graph
    name: str = DEFAULT_NAME
    description: str = ""
    template: str | None = None
    dataset: dict[str, Any] = field(default_factory=DATASET.defaults)
    training: dict[str, Any] = field(default_factory=TRAINING.defaults)
    # what loading filled in on the user's behalf ("conv_1: 'filters' was missing; using 32"):
    # the command line prints these notes and the window shows them; never saved
    load_notes: list[str] = field(default_factory=list, compare=False, repr=False)
    # the weights training starts from (an imported network's): a torch state dict with
    # GraphModel keys, its path relative to the project file's folder; None: random start
    weights: str | None = None
    # the folder of the file this project was loaded from or last saved to: where a relative
    # `weights` path starts; never saved
    folder: str | None = field(default=None, compare=False, repr=False)

    def weights_file(self) -> str | None:
        """The absolute path of the weights file, or None when the project has none."""
        if self.weights is None:
            return None
        return os.path.normpath(os.path.join(self.folder or os.getcwd(), self.weights))

    @classmethod
    def new(
        cls,
        graph: Graph | None = None,
        *,
        name: str = DEFAULT_NAME,
        description: str = "",
        template: str | None = None,
        dataset: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> Project:
        """A project with every setting not given at its default; raises ProjectError."""
        problems: list[str] = []
        settings = {}
        for group, given in ((DATASET, dataset), (TRAINING, training)):
            settings[group.name] = _settings(group, dict(given or {}), problems)
        if problems:
            raise ProjectError(f"invalid project settings: {_count(problems)}", problems)
        return cls(graph if graph is not None else Graph(), name, description, template,
                   settings["dataset"], settings["training"])


# -- writing -------------------------------------------------------------------------------


def project_to_dict(project: Project) -> dict[str, Any]:
    """The JSON document of a project: blocks in graph order, connections sorted, then the
    modules (only when there are any: files without modules stay as they were)."""
    graph = project.graph
    order = {block.id: i for i, block in enumerate(graph.blocks)}
    edges = sorted(graph.edges, key=lambda e: (order[e.dst], e.port, order[e.src]))
    modules = modules_to_dict(graph)
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": project.name,
        "description": project.description,
        "template": project.template,
        "blocks": [_block_to_dict(block) for block in graph.blocks],
        "connections": [{"from": e.src, "to": e.dst, "port": e.port} for e in edges],
        **({"modules": modules} if modules is not None else {}),
        "dataset": _ordered(DATASET, project.dataset),
        "training": _ordered(TRAINING, project.training),
        **({"weights": project.weights} if project.weights is not None else {}),
    }


def _block_to_dict(block: Block) -> dict[str, Any]:
    return {
        "id": block.id,
        "type": block.type,
        "version": registry.get(block.type).version,
        "name": block.name,
        "params": ordered_params(block.type, block.params),
        "position": [float(block.x), float(block.y)],
        "collapsed": bool(block.collapsed),
    }


def _ordered(group: SettingsGroup, values: Mapping[str, Any]) -> dict[str, Any]:
    names = [n for n in group.names if n in values] + [n for n in values if n not in group.names]
    return {n: copy.deepcopy(values[n]) for n in names}


def dumps_project(project: Project) -> str:
    """The file text: two-space indents, short flat lists and objects on one line, final newline."""
    return _dump(project_to_dict(project), "") + "\n"


def _dump(value: Any, indent: str) -> str:
    if not isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")

    def entry(key: Any, text: str) -> str:
        return f"{json.dumps(key, ensure_ascii=False)}: {text}" if isinstance(value, dict) else text

    if all(not isinstance(v, (dict, list)) for _, v in items):
        flat = opening + ", ".join(entry(k, _dump(v, "")) for k, v in items) + closing
        if len(flat) + len(indent) <= 96:
            return flat
    inner = indent + "  "
    body = ",\n".join(inner + entry(k, _dump(v, inner)) for k, v in items)
    return f"{opening}\n{body}\n{indent}{closing}"


def name_from_file(name: str, path: StrPath) -> str:
    """The name of a project the user keeps in a file: the user's, or for a network nobody
    named (DEFAULT_NAME) the file's (course.cnnproj → 'course'), so runs and exports say which.
    The window's Save, Save As and Open apply it; files the program writes for itself (run
    snapshots, recovery copies) keep the name they are given."""
    if name != DEFAULT_NAME:
        return name
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0].strip()
    return stem[:MAX_NAME] or name


def save_project(project: Project, path: StrPath) -> None:
    """Write atomically; on any failure the previous file is untouched and no temp file stays.

    A path that exists and is not a regular file (a device, a pipe, a folder, a link to one)
    and a read-only file are refused before anything is written (see core/files.py).
    """
    display = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    weights = _weights_reference(project, folder)
    try:
        data = dumps_project(dataclasses.replace(project, weights=weights)).encode("utf-8")
        refusal = files.replace_refusal(path)
        if refusal is not None:
            raise _Refused(refusal)
        target = os.path.realpath(path)
        with files.staged_write(target, needed_bytes=len(data), mode=_mode_for(target)) as temp:
            with open(temp, "wb") as handle:
                handle.write(data)
    except Exception as err:
        raise ProjectError.single(f"cannot save '{display}'", _reason(err)) from err


def _weights_reference(project: Project, folder: str) -> str | None:
    """The weights path as a file in `folder` should hold it: relative to that folder (a
    project saved elsewhere still finds its weights), absolute where no relative path exists
    (another drive). The project in memory keeps its own reference and folder."""
    target = project.weights_file()
    if target is None or project.folder is None or os.path.isabs(project.weights or ""):
        return project.weights  # a new project's relative path is meant beside its file
    try:
        return os.path.relpath(target, folder)
    except ValueError:
        return target


def _mode_for(target: str) -> int:
    """The permissions the saved file gets: the previous file's, or the default for new ones."""
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return 0o666 & ~_umask()
    if files.is_read_only(target):
        raise _Refused("the file is read-only; make it writable or save under another name")
    return stat.S_IMODE(info.st_mode)


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


_ERRNO_REASONS = {
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "the folder does not exist",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the disk is read-only",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the file name is too long",
}


class _Refused(Exception):
    """A save refused before writing anything; the message is the reason."""


def _reason(err: BaseException) -> str:
    if isinstance(err, files.FileWriteError):
        return str(err)
    if isinstance(err, OSError):
        return _ERRNO_REASONS.get(err.errno or -1, err.strerror or str(err))
    return str(err) or type(err).__name__


# -- reading -------------------------------------------------------------------------------


def load_project(path: StrPath) -> Project:
    """Read and check a project file; every failure is a ProjectError naming the file."""
    summary = f"cannot open '{os.fspath(path)}'"
    data = _read_json(path, summary)
    try:
        project = project_from_dict(data)
        project.folder = os.path.dirname(os.path.abspath(path))
        return project
    except ProjectError as err:
        raise ProjectError(f"{summary}: {_count(err.problems)}", err.problems) from None


def _read_json(path: StrPath, summary: str) -> Any:
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ProjectError.single(summary, "it is a folder, not a project file")
        if not stat.S_ISREG(info.st_mode):
            raise ProjectError.single(summary, "it is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ProjectError.single(summary, _too_large(info.st_size))
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise ProjectError.single(summary, "the file does not exist") from None
    except OSError as err:
        raise ProjectError.single(summary, _reason(err)) from None
    except ValueError:
        raise ProjectError.single(summary, "the file name is not valid") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ProjectError.single(summary, _too_large(len(raw)))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if err.end == len(raw) and err.reason == "unexpected end of data":
            reason = "the file ends inside a character; it may be truncated"
        else:
            offset = err.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
            reason = (
                f"not UTF-8 text (byte 0x{raw[offset]:02x} at offset {offset:,}); "
                "it is not a CNN Studio project or it is damaged"
            )
        raise ProjectError.single(summary, reason) from None
    if not text.strip():
        raise ProjectError.single(summary, "the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        reason = (
            f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
            "the file may be truncated or damaged"
        )
    except RecursionError:
        reason = "not valid JSON (nested too deeply); the file may be damaged"
    except ValueError as err:
        reason = f"not valid JSON ({err}); the file may be damaged"
    raise ProjectError.single(summary, reason)


def _too_large(size: int) -> str:
    return (
        f"the file is too large ({size / 2**20:,.1f} MiB; a project file is at most "
        f"{MAX_FILE_BYTES // 2**20} MiB)"
    )


def project_from_dict(data: Any) -> Project:
    """Check a project document and build the project; raises ProjectError listing every problem.

    Unknown top-level and block keys are ignored (files from newer versions of the same schema
    may carry more); unknown parameters and settings are errors.
    """
    problems: list[str] = []
    data = _upgrade(data, problems)
    if problems:
        raise ProjectError(f"invalid project: {_count(problems)}", problems)
    name = _text(data, "name", DEFAULT_NAME, MAX_NAME, problems)
    description = _text(data, "description", "", 100_000, problems)
    template = data.get("template")
    if template is not None and not (isinstance(template, str) and len(template) <= 200):
        problems.append(f"template: expected a text of at most 200 characters or null, "
                        f"got {show(template)}")
        template = None
    weights = data.get("weights")
    if weights is not None and not (isinstance(weights, str) and 0 < len(weights) <= 1000):
        problems.append(f"weights: expected the path of a weights file or null, "
                        f"got {show(weights)}")
        weights = None
    graph = Graph()
    notes: list[str] = []
    declared = _read_blocks(data, graph, problems, notes)
    if declared is None:  # no usable block list: every connection would be reported in vain
        list_field(data, "connections", MAX_CONNECTIONS, problems)
    else:
        _read_connections(data, graph, declared, problems)
        read_modules(data, graph, declared, problems)
    settings = {}
    for group in (DATASET, TRAINING):
        given = data.get(group.name, {})
        if not isinstance(given, dict):
            problems.append(f"{group.name}: expected an object, got {show(given)}")
            given = {}
        settings[group.name] = _settings(group, given, problems)
    if problems:
        raise ProjectError(f"invalid project: {_count(problems)}", problems)
    return Project(graph, name, description, template, settings["dataset"], settings["training"],
                   _capped(notes), weights)


def _upgrade(data: Any, problems: list[str]) -> dict[str, Any]:
    """Check format and schema version and bring older documents up to SCHEMA_VERSION."""
    if not isinstance(data, dict):
        problems.append(f"top level: expected a JSON object, got {show(data)}")
        return {}
    if data.get("format") != FORMAT:
        found = f"got {show(data['format'])}" if "format" in data else "missing field 'format'"
        problems.append(f"format: not a CNN Studio project (expected {FORMAT!r}, {found})")
        return data
    version = data.get("schema_version")
    if "schema_version" not in data:
        problems.append("missing field 'schema_version'")
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(f"schema_version: expected a positive integer, got {show(version)}")
    elif version > SCHEMA_VERSION:
        problems.append(
            f"schema_version: this file was saved by a newer CNN Studio (schema {version}; "
            f"this version reads schema {SCHEMA_VERSION} and older): update CNN Studio to open it"
        )
    elif version < SCHEMA_VERSION:
        data = copy.deepcopy(data)
        for step in range(version, SCHEMA_VERSION):
            migrate = MIGRATIONS.get(step)
            if migrate is None:
                problems.append(f"schema_version: no way to upgrade schema {step} to {step + 1}")
                break
            try:
                data = migrate(data)
            except Exception as err:  # a migration meeting data it did not expect
                problems.append(f"schema_version: cannot upgrade schema {step} to {step + 1} "
                                f"({type(err).__name__}: {err})")
                break
            if not isinstance(data, dict):
                problems.append(f"schema_version: upgrading schema {step} gave no object")
                break
            data["schema_version"] = step + 1
    return data


def _read_blocks(data: dict[str, Any], graph: Graph, problems: list[str],
                 notes: list[str]) -> set[str] | None:
    """Insert every usable block; returns the ids declared, usable or not (for connections).

    None when there is no usable list of blocks at all. A parameter missing from a block gets
    its default, and `notes` says so: a file that lost a block's `filters` must not train a
    network of 32 filters without a word.
    """
    declared: set[str] = set()
    blocks = list_field(data, "blocks", MAX_BLOCKS, problems)
    if blocks is None:
        return None
    first_index: dict[str, int] = {}
    for index, entry in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object, got {show(entry)}")
            continue
        usable = True
        block_id = entry.get("id")
        if "id" not in entry:
            problems.append(f"{where}: missing field 'id'")
            usable = False
        elif not isinstance(block_id, str):
            problems.append(f"{where}.id: expected a text, got {show(block_id)}")
            usable = False
        elif block_id in first_index:
            problems.append(f"{where}.id: duplicate id {block_id!r} "
                            f"(blocks[{first_index[block_id]}] has it too)")
            usable = False
        else:
            first_index[block_id] = index
            declared.add(block_id)
        block_type = read_block_type(entry, where, problems)
        if block_type is None:
            usable = False
        params, missing = read_block_params(entry, where, block_type, problems)
        name = entry.get("name", block_id[:64] if isinstance(block_id, str) else "block")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            problems.append(f"{where}.name: expected a name of 1 to 64 characters, "
                            f"got {show(name)}")
            name = "block"
        x, y = read_position(entry, where, problems)
        collapsed = entry.get("collapsed", False)
        if not isinstance(collapsed, bool):
            problems.append(f"{where}.collapsed: expected true or false, got {show(collapsed)}")
            collapsed = False
        if not usable or block_type is None:
            continue
        try:
            graph.insert(Block(block_id, block_type.type_id, name, params, x, y, collapsed))
        except GraphError as err:
            problems.append(f"{where}.id: {err}")
            continue
        if missing:
            notes.append(_defaults_note(name, missing, params))
    return declared


def _defaults_note(name: str, missing: Sequence[str], params: Mapping[str, Any]) -> str:
    """'conv_1: 'filters' was missing; using 32' (several: 'a' and 'b' were …; using 1 and 2)."""
    names = _and([repr(n) for n in missing])
    values = _and([show(params[n]) for n in missing])
    verb = "was" if len(missing) == 1 else "were"
    return f"{name}: {names} {verb} missing; using {values}"


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _capped(notes: list[str]) -> list[str]:
    if len(notes) <= MAX_LISTED_PROBLEMS:
        return notes
    more = len(notes) - MAX_LISTED_PROBLEMS
    return notes[:MAX_LISTED_PROBLEMS] + [
        f"... and {more} more block{'s' if more != 1 else ''} with parameters filled in with "
        "their defaults"]


def _read_connections(
    data: dict[str, Any], graph: Graph, declared: set[str], problems: list[str]
) -> None:
    connections = list_field(data, "connections", MAX_CONNECTIONS, problems) or []
    for index, entry in enumerate(connections):
        where = f"connections[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object, got {show(entry)}")
            continue
        ends: list[str | None] = []
        for key in ("from", "to"):
            value = entry.get(key)
            if key not in entry:
                problems.append(f"{where}: missing field {key!r}")
            elif not isinstance(value, str):
                problems.append(f"{where}.{key}: expected a block id, got {show(value)}")
            elif value not in graph:
                if value not in declared:  # a declared but unusable block was reported already
                    problems.append(f"{where}.{key}: no block has id {value!r}")
            else:
                ends.append(value)
                continue
            ends.append(None)
        port = entry.get("port")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool)
                                 or not 0 <= port <= MAX_PORT):
            problems.append(f"{where}.port: expected an integer from 0 to {MAX_PORT:,}, "
                            f"got {show(port)}")
            continue
        src, dst = ends
        if src is None or dst is None:
            continue
        problem = graph.connection_problem(src, dst, port)
        port_problem = _port_problem(graph.block(dst), port)
        if problem:
            problems.append(f"{where}: {problem}")
        elif port_problem:
            problems.append(f"{where}.port: {port_problem}")
        elif port is None:
            graph.connect(src, dst)
        else:
            graph.restore_edge(Edge(src, dst, port))


def _port_problem(block: Block, port: int | None) -> str | None:
    """A port a block does not have: a one-input block's input is port 0. Merges (any number
    of inputs) take any port, as the ports only order their inputs and editing leaves gaps."""
    limit = registry.get(block.type).max_inputs
    if port is None or limit is None or limit == 0 or port < limit:
        return None
    ports = "0" if limit == 1 else f"0 to {limit - 1}"
    inputs = "one input" if limit == 1 else f"{limit} inputs"
    return f"{block.label} takes {inputs}, so the port must be {ports}, got {port}"


def _settings(group: SettingsGroup, given: Mapping[str, Any], problems: list[str]) -> dict:
    values, found = group.normalize(given)
    problems.extend(f"{group.name}.{name}: {message}" for name, message in found)
    return values


# -- small helpers -------------------------------------------------------------------------


def _text(data: dict[str, Any], key: str, default: str, limit: int, problems: list[str]) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or len(value) > limit:
        problems.append(f"{key}: expected a text of at most {limit:,} characters, "
                        f"got {show(value)}")
        return default
    return value


def _count(problems: Sequence[str]) -> str:
    return f"{len(problems)} problem" + ("" if len(problems) == 1 else "s")

