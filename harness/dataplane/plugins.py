"""Install the declared Connect plugins the way the Connect pod's init container does.

The files are the ConfigMap's (`plugin_files()`), the command is the init container's, and the
downloads are kept in a cache between runs (verified against the pinned sha256 each time).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from components.plugins import INSTALLER, MANIFEST, PLUGINS, Plugin, plugin_files
from components.settings import MAVEN_CENTRAL
from harness.needs import CACHE, require


def require_jdk() -> None:
    require(
        shutil.which("java") is not None and shutil.which("javac") is not None,
        "a JDK (java and javac, 17 or newer)",
        "install one, e.g. `apt-get install openjdk-17-jdk-headless`",
    )


def write_plugin_files(directory: Path, files: dict[str, str] | None = None) -> Path:
    """`files` (name → text), or the ConfigMap's files of every declared plugin, into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (files or plugin_files()).items():
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


def installed_plugins(plugins: tuple[Plugin, ...]) -> Path:
    """A plugin.path holding just `plugins`, as a stack's workers install them. Every declared plugin
    is installed by the installer once per content of its files (the manifest, the installer, the
    sources) and kept; a set is hard links to its plugins' directories. Workers only read it, so the
    pipelines of a run, and of later runs, share it. test_plugins.py tests the installer itself."""
    files = plugin_files(PLUGINS)
    digest = hashlib.sha256("\0".join(f"{name}\0{text}" for name, text in sorted(files.items())).encode()).hexdigest()
    home = CACHE / "installed" / digest[:16]
    chosen = "+".join(plugin.name for plugin in plugins)
    target = home / chosen
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{digest[:16]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers install once, one after the other
        if not home.exists():
            work = Path(tempfile.mkdtemp(prefix="install-", dir=home.parent))
            result = install_plugins(work / "all", write_plugin_files(work / "sources", files))
            if result.returncode != 0:
                shutil.rmtree(work, ignore_errors=True)
                raise RuntimeError(f"plugin install failed:\n{result.stderr}")
            os.replace(work, home)
        if not target.exists():
            work = Path(tempfile.mkdtemp(prefix="set-", dir=home))
            for plugin in plugins:
                shutil.copytree(home / "all" / plugin.name, work / plugin.name, copy_function=os.link)
            os.replace(work, target)
    return target
