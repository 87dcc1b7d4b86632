"""Imports, at build time, every module a request might import later.

componentize-py snapshots the interpreter after `app.py` is imported, and
a module first imported while serving is not found: Flask, Werkzeug and
Starlette import some of theirs inside functions, and `str.encode("idna")`
loads a codec on first use. So every module of every installed package
(the folders pip filled for `requirements.txt`) and every codec is
imported now. A module that fails to import (a platform it is not for, an
optional dependency not installed) is skipped: the app never reaches it.
"""

import importlib
import os
import pkgutil
import sys
import types


def _walk(package_name: str) -> None:
    try:
        package = importlib.import_module(package_name)
    except Exception as err:
        skipped[package_name] = f"{type(err).__name__}: {err}"
        return
    paths = getattr(package, "__path__", None)
    if paths is None:
        return
    for info in pkgutil.walk_packages(paths, package_name + ".", onerror=lambda _name: None):
        # A `__main__` runs a command line when imported.
        if info.name.endswith(".__main__"):
            continue
        _try_import(info.name)


# The file `hive build` leaves in the folder it installed `requirements.txt`
# into: only that folder is walked, never the build tools' own packages.
MARKER = ".hive-requirements"

# Modules that failed to import, with why: `hive.snapshot.skipped`, for
# an app that finds one missing at run time.
skipped = {}


def _try_import(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as err:
        skipped[name] = f"{type(err).__name__}: {err}"


def installed_folders():
    """The folders `hive build` installed requirements into."""
    for entry in list(sys.path):
        if os.path.isfile(os.path.join(entry, MARKER)):
            yield entry


class _NoTls:
    """What `ssl`'s classes are in a component: they cannot be made."""

    def __init__(self, *_args, **_kwargs):
        raise OSError("TLS is not available inside a Hive component (WASI has no _ssl)")


def _stand_in_for_ssl() -> None:
    """WASI's Python has no `_ssl`, so `import ssl` fails, and with it any
    module that only mentions TLS (anyio's asyncio backend, which Starlette
    needs, does). A stand-in `ssl` lets them import; using TLS fails with
    a clear error. Outbound HTTPS goes through `wasi:http`, not `ssl`."""
    try:
        import ssl  # noqa: F401
        return
    except ImportError:
        pass
    stand_in = types.ModuleType("ssl", _stand_in_for_ssl.__doc__)
    made = {}

    def attribute(name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in made:
            if name.isupper():
                made[name] = 0
            elif name.endswith("Error"):
                made[name] = type(name, (OSError,), {})
            else:
                made[name] = type(name, (_NoTls,), {})
        return made[name]

    stand_in.__getattr__ = attribute
    sys.modules["ssl"] = stand_in


def import_everything() -> None:
    """Imports every codec and every module of the installed packages."""
    _stand_in_for_ssl()
    _walk("encodings")
    for folder in installed_folders():
        for info in pkgutil.iter_modules([folder]):
            if info.ispkg:
                _walk(info.name)
            else:
                _try_import(info.name)
