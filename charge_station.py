"""Starts the simulated charge station(s) from the repository root: ``python charge_station.py``.

The package directory ``charge_station/`` beside this file is found before this file by the import system (a
package wins over a module of the same name in one directory), so this runs the package's ``__main__``
as ``python -m charge_station`` would. It runs it through runpy instead of importing it by name so that the
file type-checks on its own: mypy would take ``import charge_station`` here for this file importing itself.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("charge_station", run_name="__main__", alter_sys=True)
