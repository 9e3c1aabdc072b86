"""Every package of gfws is installed: a module folder forgotten in setup.cfg breaks only the installed copy."""

from __future__ import annotations

import configparser
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_every_package_folder_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    listed = set(config["options"]["packages"].split())
    found = {os.path.relpath(folder, ROOT).replace(os.sep, ".")
             for folder, _, files in os.walk(os.path.join(ROOT, "gfws")) if "__init__.py" in files}
    assert found <= listed, f"not in setup.cfg's packages: {sorted(found - listed)}"
