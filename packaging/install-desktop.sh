#!/bin/sh
# Register CNN Studio with this user's desktop (`make install-desktop`): the launcher, its icon
# and the .cnnproj file type with CNN Studio as its default application, so double-clicking a
# project opens it. `--uninstall` takes them out again (`make uninstall-desktop`).
#
# The launcher runs the `cnnstudio` on PATH (pipx install ., pip install --user .), or else
# this checkout's .venv/bin/cnnstudio (make install), by its full path: a desktop session's
# PATH may not hold the folder a shell's does.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mime_type=application/x-cnnstudio-project

for tool in xdg-desktop-menu xdg-icon-resource xdg-mime; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-desktop needs $tool, from the xdg-utils package:" >&2
        echo "  sudo apt-get install xdg-utils    (Debian, Ubuntu)" >&2
        echo "  sudo dnf install xdg-utils        (Fedora)" >&2
        exit 1
    fi
done

if [ "${1:-}" = "--uninstall" ]; then
    xdg-desktop-menu uninstall --mode user --novendor cnnstudio.desktop
    xdg-mime uninstall --mode user "$here/cnnstudio-mime.xml"
    xdg-icon-resource uninstall --mode user --novendor --size 256 cnnstudio
    echo "CNN Studio's launcher, icon and file type are removed."
    exit 0
fi

program=$(command -v cnnstudio 2>/dev/null || true)
if [ -z "$program" ] && [ -x "$root/.venv/bin/cnnstudio" ]; then
    program="$root/.venv/bin/cnnstudio"
fi
if [ -z "$program" ]; then
    echo "no cnnstudio command to launch: install CNN Studio first (make install," >&2
    echo "or pipx install . from this folder), then run make install-desktop again" >&2
    exit 1
fi
case "$program" in
    *[\"\`\$\\]*)
        echo "cannot write a launcher for $program: its path holds a quote, backquote," >&2
        echo "dollar sign or backslash; install CNN Studio in another folder" >&2
        exit 1
        ;;
esac

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
# The desktop entry's Exec names the program found above, quoted (the path may hold spaces).
while IFS= read -r line; do
    case "$line" in
        "Exec=cnnstudio "*) printf 'Exec="%s" %s\n' "$program" "${line#Exec=cnnstudio }" ;;
        *) printf '%s\n' "$line" ;;
    esac
done < "$here/cnnstudio.desktop" > "$staging/cnnstudio.desktop"

xdg-icon-resource install --mode user --novendor --size 256 \
    "$root/cnnstudio/resources/icons/cnnstudio.png" cnnstudio
xdg-mime install --mode user "$here/cnnstudio-mime.xml"
xdg-desktop-menu install --mode user --novendor "$staging/cnnstudio.desktop"
xdg-mime default cnnstudio.desktop "$mime_type"
echo "CNN Studio is in the applications menu, launching $program;"
echo ".cnnproj files open in it (make uninstall-desktop takes this out again)."
