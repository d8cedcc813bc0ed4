"""The real Pulumi CLI, built from the Go module proxy (scripts/build-pulumi-cli.sh), on a fresh local
backend in a temporary home: what `make up` asks of it before the program runs. `select-stack.sh` with
and without a terminal, and every `pulumi config set` command of the README and docs/, validated against
Pulumi.yaml's types by the CLI itself (`pulumi preview` checks the stack's config before it loads the
language host, which is not served here: reaching that step means the config passed).
"""

import os
import pty
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests import docs
from harness.needs import require

ROOT = Path(__file__).resolve().parent.parent
# requirements.txt pins the SDK 3.272.0, whose CLI module the Go proxy does not serve: the nearest it does.
PULUMI_CLI_VERSION = "3.274.0"
CONFIG_PASSED = "failed to load language plugin python"  # the step after the config's validation
PASSPHRASE = "correct horse battery staple"
TERMINAL_REPLIES = {b"\x1b[6n": b"\x1b[1;1R", b"\x1b]11;?": b"\x1b]11;rgb:0000/0000/0000\x1b\\"}


@pytest.fixture(scope="module")
def pulumi() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    binary = cache / "data-ingestion" / "pulumi-cli" / PULUMI_CLI_VERSION / "pulumi"
    if not binary.exists():
        require(shutil.which("go") is not None, f"the Pulumi CLI {PULUMI_CLI_VERSION}",
                "install Go, which builds it from the module proxy (scripts/build-pulumi-cli.sh)")
        subprocess.run([str(ROOT / "scripts" / "build-pulumi-cli.sh"), PULUMI_CLI_VERSION], check=True,
                       stdout=subprocess.DEVNULL, timeout=2400)
    return binary


@pytest.fixture
def project(tmp_path, pulumi):
    """A copy of the project's files the CLI reads, and the environment of a new user: a home of
    their own, no backend logged in, no passphrase set, this CLI first on the PATH."""
    work = tmp_path / "project"
    (work / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", work)
    shutil.copy(ROOT / "scripts" / "select-stack.sh", work / "scripts")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    # The CLI finds its home through the user database, not $HOME: PULUMI_HOME keeps its credentials
    # here, and a local backend of this test's own stands for the `pulumi login --local` of a new user.
    env.update(PATH=f"{pulumi.parent}:{os.environ['PATH']}", PULUMI_HOME=str(tmp_path / "pulumi-home"),
               PULUMI_BACKEND_URL=f"file://{tmp_path / 'state'}", PULUMI_SKIP_UPDATE_CHECK="true", TERM="xterm")
    (tmp_path / "state").mkdir()
    return work, env


def on_a_terminal(argv, cwd, env, answers, timeout=120):
    """Runs argv on a pseudo-terminal, typing each answer once its question (a regex) has appeared;
    returns (exit code, everything shown)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    shown, pending = "", list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the terminal closed: the process is done
                    break
                if not chunk:
                    break
                # The CLI's prompts ask the terminal where the cursor is and what its background is,
                # and wait for the answer: answer as a terminal does.
                for query, reply in TERMINAL_REPLIES.items():
                    if query in chunk:
                        os.write(controller, reply)
                shown += chunk.decode(errors="replace")
                if pending and re.search(pending[0][0], shown.split("\x00")[-1]):
                    os.write(controller, (pending.pop(0)[1] + "\r").encode())  # Enter, in raw mode
                    shown += "\x00"  # the next question must come after this answer
            elif process.poll() is not None:
                break
        else:
            raise AssertionError(f"{argv} still waiting after {timeout}s; it showed:\n{shown}")
        return process.wait(timeout=30), shown.replace("\x00", "")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)


def test_select_stack_on_a_terminal_asks_for_the_passphrase_and_creates_the_stack(project):
    work, env = project
    code, shown = on_a_terminal(["scripts/select-stack.sh", "dev"], work, env,
                                [(r"Enter your passphrase", PASSPHRASE), (r"(?i)re-?enter|confirm", PASSPHRASE)])
    assert code == 0, shown
    assert "Stack: dev" in shown
    assert "encryptionsalt:" in (work / "Pulumi.dev.yaml").read_text()


def test_select_stack_without_a_terminal_says_what_to_set_and_creates_nothing(project):
    work, env = project
    result = subprocess.run(["scripts/select-stack.sh", "dev"], cwd=work, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE" in result.stderr
    assert not (work / "Pulumi.dev.yaml").exists()
    # With the passphrase in the environment, no terminal is needed.
    result = subprocess.run(["scripts/select-stack.sh", "dev"], cwd=work, env={**env, "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE},
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Stack: dev" in result.stderr


# The docs' one example of a command the CLI refuses, quoted with the refusal.
REFUSED_EXAMPLE = "pulumi config set capture sales,billing.invoices"


def readme_config_commands() -> list[str]:
    """Every `pulumi config set` command the README and docs/ give, in code blocks or inline, as
    written (but their example of a refused one)."""
    pages = "\n".join(docs.every_page().values())
    found = [command.strip() for command in re.findall(r"pulumi config set(?:-all)? [^`\n#&]*", pages)]
    return [command for command in found if command != REFUSED_EXAMPLE]


def stack(work, env):
    env = {**env, "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}
    subprocess.run(["scripts/select-stack.sh", "dev"], cwd=work, env=env, check=True, capture_output=True, timeout=120)
    return env


def preview(work, env) -> str:
    result = subprocess.run(["pulumi", "preview", "--stack", "dev", "--non-interactive"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def test_every_config_command_of_the_readme_passes_the_clis_own_validation(project):
    work, env = project
    env = stack(work, env)
    commands = readme_config_commands()
    assert len(commands) >= 10 and any("--path 'capture[0]'" in command for command in commands)
    for command in commands:
        result = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    shown = preview(work, env)
    assert CONFIG_PASSED in shown and "validating stack config" not in shown, shown


def test_a_value_of_the_wrong_type_is_refused_by_the_cli_in_the_words_the_readme_quotes(project):
    """`pulumi config set` stores any text; the CLI refuses a value of the wrong type before the program runs."""
    work, env = project
    env = stack(work, env)
    readme = docs.read("docs/capture.md")
    for command, key, kind in ((REFUSED_EXAMPLE, "capture", "array<string>"),
                               ("pulumi config set kafkaBrokers three", "kafkaBrokers", "integer")):
        subprocess.run(["bash", "-c", command], cwd=work, env=env, check=True, capture_output=True)
        shown = preview(work, env)
        assert f"Stack 'dev' with configuration key '{key}' must be of type '{kind}'" in shown, shown
        assert f"'{key}' must be of type '{kind}'" in readme  # the docs quote the CLI's words
        subprocess.run(["pulumi", "config", "rm", key], cwd=work, env=env, check=True, capture_output=True)
    assert f"`{REFUSED_EXAMPLE}`" in readme


def test_the_readmes_own_stack_block_as_written_then_make_ups_stack_selection(project):
    """`pulumi stack init dev-alice`, its config line, then what `make up STACK=dev-alice` runs before
    `pulumi up`: the stack is selected, not created again, and its config passes the CLI's check."""
    work, env = project
    env = {**env, "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}
    block = docs.section("README.md", "Your own stack").split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert lines[-1] == "make up STACK=dev-alice"
    for line in lines[:-1]:
        result = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{line}: {result.stderr}"
    selected = subprocess.run(["scripts/select-stack.sh", "dev-alice"], cwd=work, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
    assert selected.returncode == 0 and "Stack: dev-alice" in selected.stderr, selected.stderr
    assert "hostPortOffset: \"100\"" in (work / "Pulumi.dev-alice.yaml").read_text()
    result = subprocess.run(["pulumi", "preview", "--stack", "dev-alice", "--non-interactive"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert CONFIG_PASSED in result.stdout + result.stderr, result.stdout + result.stderr
