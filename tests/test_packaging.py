"""An app people can install: the wheel carries the package, its resources and the desktop files,
and installed outside this checkout it gives a working `cnnstudio`; the desktop entry and the
.cnnproj file type register with the user's desktop (`make install-desktop`).

`cnnstudio FILE` opening the file is tests/ui/test_main_window.py's
test_the_command_line_opens_the_window_on_a_file.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cnnstudio"
PACKAGING = ROOT / "packaging"
MIME_TYPE = "application/x-cnnstudio-project"
# What the wheel installs under its prefix, for the desktop (pyproject.toml's data-files).
DESKTOP_DATA = ("share/applications/cnnstudio.desktop",
                "share/mime/packages/cnnstudio-mime.xml",
                "share/icons/hicolor/256x256/apps/cnnstudio.png")
# What a build needs from the checkout (pyproject.toml names the readme and the data-files).
BUILD_SOURCES = ("pyproject.toml", "README.md", "cnnstudio", "packaging")
DEPENDENCY_NAMES = ("torch", "PySide6", "numpy")  # the fresh environment must import these


def desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in a desktop entry
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def package_files() -> set[str]:
    """Every file of the package in the checkout, as the wheel names it (no byte code)."""
    return {path.relative_to(ROOT).as_posix() for path in PACKAGE.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


def quiet_env(**extra: str) -> dict[str, str]:
    """This environment without what would let a child Python see the checkout."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    return {**env, **extra}


# -- the desktop entry and the file type -----------------------------------------------------

def test_desktop_entry_opens_projects_with_cnnstudio():
    entry = desktop_entry(PACKAGING / "cnnstudio.desktop")
    assert entry["Type"] == "Application"
    assert entry["Exec"] == "cnnstudio %f"
    assert entry["MimeType"] == f"{MIME_TYPE};"
    assert entry["Icon"] == "cnnstudio"
    assert (PACKAGE / "resources" / "icons" / "cnnstudio.png").is_file()
    mime = (PACKAGING / "cnnstudio-mime.xml").read_text(encoding="utf-8")
    assert f'<mime-type type="{MIME_TYPE}">' in mime
    assert '<glob pattern="*.cnnproj"/>' in mime


def test_desktop_entry_validates():
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    result = subprocess.run([validate, str(PACKAGING / "cnnstudio.desktop")],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""  # not even a hint


def test_desktop_icon_is_the_window_icon(qapp):
    spec = importlib.util.spec_from_file_location("make_icon", PACKAGING / "make_icon.py")
    assert spec is not None and spec.loader is not None
    make_icon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icon)
    from PySide6.QtGui import QImage

    def pixels(image: QImage) -> np.ndarray:
        image = image.convertToFormat(QImage.Format.Format_RGBA8888)
        return np.frombuffer(image.constBits(), np.uint8).reshape(
            image.height(), image.bytesPerLine())[:, :image.width() * 4].astype(int)

    shipped = QImage(str(make_icon.ICON_FILE))
    drawn = make_icon.render_icon()
    assert (shipped.width(), shipped.height()) == (drawn.width(), drawn.height()) == (256, 256)
    difference = np.abs(pixels(shipped) - pixels(drawn)).mean()
    assert difference < 1.0, ("the desktop icon differs from the window's icon: run "
                              "QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icon.py")


@pytest.fixture
def desktop_home(tmp_path: Path) -> dict[str, str]:
    """An environment whose home, data and configuration folders are temporary."""
    home = tmp_path / "home"
    home.mkdir()
    env = quiet_env(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"),
                    XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("XDG_CURRENT_DESKTOP", None)  # the generic desktop: files, no session to ask
    return env


def test_make_install_desktop_registers_the_launcher_icon_and_file_type(desktop_home):
    needed = ("make", "xdg-desktop-menu", "xdg-icon-resource", "xdg-mime", "update-mime-database")
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install make xdg-utils "
                    "shared-mime-info)")
    program = Path(sys.executable).parent / "cnnstudio"  # pip put it beside this Python
    assert program.is_file(), "install the project (make install) first"
    env = {**desktop_home, "PATH": f"{program.parent}{os.pathsep}{desktop_home['PATH']}"}
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "install-desktop"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    data = Path(env["XDG_DATA_HOME"])
    entry = desktop_entry(data / "applications" / "cnnstudio.desktop")
    assert entry["Exec"] == f'"{program}" %f'  # by full path: a session's PATH may lack it
    assert entry["MimeType"] == f"{MIME_TYPE};"
    validate = shutil.which("desktop-file-validate")
    if validate is not None:
        checked = subprocess.run([validate, str(data / "applications" / "cnnstudio.desktop")],
                                 capture_output=True, text=True, timeout=30, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "cnnstudio.png").is_file()
    globs = (data / "mime" / "globs2").read_text(encoding="utf-8")
    assert f"{MIME_TYPE}:*.cnnproj" in globs
    default = subprocess.run(["xdg-mime", "query", "default", MIME_TYPE], env=env,
                             capture_output=True, text=True, timeout=30, check=False)
    assert default.stdout.strip() == "cnnstudio.desktop"

    result = subprocess.run(["make", "-s", "-C", str(ROOT), "uninstall-desktop"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (data / "applications" / "cnnstudio.desktop").exists()
    assert f"{MIME_TYPE}:" not in (data / "mime" / "globs2").read_text(encoding="utf-8")


def test_install_desktop_says_how_to_get_xdg_utils(desktop_home, tmp_path):
    tools = tmp_path / "bin"  # a PATH with what the script runs before its check, no xdg-utils
    tools.mkdir()
    dirname = shutil.which("dirname")
    assert dirname is not None
    (tools / "dirname").symlink_to(dirname)
    env = {**desktop_home, "PATH": str(tools)}
    result = subprocess.run(["/bin/sh", str(PACKAGING / "install-desktop.sh")], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "needs xdg-desktop-menu, from the xdg-utils package" in result.stderr
    assert "sudo apt-get install xdg-utils" in result.stderr
    assert not Path(env["XDG_DATA_HOME"]).exists()


# -- the wheel, installed outside the checkout -------------------------------------------------

def dependency_site_dirs() -> list[str]:
    """The site-packages folders this Python finds the dependencies in, never the checkout."""
    dirs = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.name in ("site-packages", "dist-packages") and path != ROOT \
                and path.is_dir() and str(path) not in dirs:
            dirs.append(str(path))
    return dirs


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built by `python -m build` from a copy of the checkout's build sources."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                             "--outdir", str(dist), str(source)], cwd=source,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list(dist.glob("cnnstudio-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_the_wheel_carries_the_package_resources_and_desktop_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    contents = {name for name in names if not name.startswith("cnnstudio-")}
    assert contents == package_files()  # every module and resource; no byte code, no tests
    assert "cnnstudio/resources/datasets/mnist/t10k-images-idx3-ubyte.gz" in contents
    assert "cnnstudio/resources/icons/cnnstudio.png" in contents
    data = {name.split(".data/data/", 1)[1] for name in names if ".data/data/" in name}
    assert data == set(DESKTOP_DATA)
    version = importlib.metadata.version("cnnstudio")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"cnnstudio-{version}.dist-info/entry_points.txt").decode()
    assert "cnnstudio = cnnstudio.cli:main" in entry_points


@pytest.mark.slow
def test_the_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    """A fresh environment (no system site-packages) with the wheel installed: the dependencies
    (gigabytes of torch) come from this environment's site-packages through a .pth file, which
    adds the folders only: the editable install's finder there is not run."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                             "--no-deps", "--no-index", "--quiet", str(wheel)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path"
                           "('purelib'))"], capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()
    (Path(site) / "cnnstudio_test_dependencies.pth").write_text(
        "\n".join(dependency_site_dirs()) + "\n", encoding="utf-8")
    work = tmp_path / "work"  # outside the checkout: `python -m` would see the current folder
    work.mkdir()
    env = quiet_env(QT_QPA_PLATFORM="offscreen")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True,
                               timeout=300, check=False)

    where = run(str(python), "-c", "import cnnstudio, cnnstudio.resources as r, "
                f"{', '.join(DEPENDENCY_NAMES)}; print(cnnstudio.__file__); "
                "print(r.RESOURCES_DIR); from cnnstudio.train.data import load_dataset, "
                "describe; print(describe(load_dataset('mnist-sample')))")
    assert where.returncode == 0, where.stderr[-3000:]
    module, resources, described = where.stdout.splitlines()[:3]
    assert Path(module).resolve().is_relative_to(venv.resolve()), module
    assert not Path(module).resolve().is_relative_to(ROOT), module
    assert Path(resources).resolve().is_relative_to(venv.resolve()), resources
    assert "8,000 training + 2,000 validation images" in described, described  # all 10,000 read

    program = venv / "bin" / "cnnstudio"
    summary = run(str(program), "summary", "--template", "course-example")
    assert summary.returncode == 0, summary.stderr[-3000:]
    assert "171,158" in summary.stdout

    picture = work / "window.png"
    shot = run(str(program), "--screenshot", str(picture))
    assert shot.returncode == 0, shot.stderr[-3000:]
    from PIL import Image

    with Image.open(picture) as image:
        assert image.width >= 800 and image.height >= 500
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # a drawn window, not a blank rectangle
