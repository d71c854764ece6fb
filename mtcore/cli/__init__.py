"""The ``mt`` command line (Typer + rich). Commands import heavy libraries only when they run."""
