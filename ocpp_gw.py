"""Starts the OCPP-J gateway from the repository root: ``python ocpp_gw.py --config config.cfg``.

The package directory ``ocpp_gw/`` beside this file is found before this file by the import system (a
package wins over a module of the same name in one directory), so this runs the package's ``__main__``
as ``python -m ocpp_gw`` would. It runs it through runpy instead of importing it by name so that the
file type-checks on its own: mypy would take ``import ocpp_gw`` here for this file importing itself.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("ocpp_gw", run_name="__main__", alter_sys=True)
