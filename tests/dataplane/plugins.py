"""Install the declared Connect plugins the way the Connect pod's init container does.

The files are the ConfigMap's (`plugin_files()`), the command is the init container's, and the
downloads are kept in a cache between runs (verified against the pinned sha256 each time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from components.plugins import INSTALLER, MANIFEST, plugin_files
from components.settings import MAVEN_CENTRAL
from tests.dataplane.conftest import CACHE, require



def require_jdk() -> None:
    require(
        shutil.which("java") is not None and shutil.which("javac") is not None,
        "a JDK (java and javac, 17 or newer)",
        "install one, e.g. `apt-get install openjdk-17-jdk-headless`",
    )


def write_plugin_files(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in plugin_files().items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def install_plugins(plugin_dir: Path, files_dir: Path | None = None, repository: str = MAVEN_CENTRAL,
                    cache: Path = CACHE / "plugins") -> subprocess.CompletedProcess[str]:
    """Run the installer on `files_dir` as it is, or on freshly written plugin files."""
    files = files_dir or write_plugin_files(plugin_dir.parent / "plugin-sources")
    return subprocess.run(
        ["java", str(files / INSTALLER), str(files / MANIFEST), str(plugin_dir), str(cache)],
        env={**os.environ, "PLUGIN_REPOSITORY": repository},
        capture_output=True,
        text=True,
        timeout=600,
    )
