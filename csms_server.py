"""Starts the reference CSMS worker from the repository root: ``python csms_server.py``.

The package directory ``csms_server/`` beside this file is found before this file by the import system (a
package wins over a module of the same name in one directory), so this runs the package's ``__main__``
as ``python -m csms_server`` would. It runs it through runpy instead of importing it by name so that the
file type-checks on its own: mypy would take ``import csms_server`` here for this file importing itself.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("csms_server", run_name="__main__", alter_sys=True)
