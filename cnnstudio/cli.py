"""Command-line front end (placeholder until summary lands)."""


def main(argv=None) -> int:
    return 0
