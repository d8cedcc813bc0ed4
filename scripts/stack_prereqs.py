"""What `make up STACK=<stack>` needs beyond the tools on PATH, checked before anything is created.

- Docker's memory (with cluster=kind, for `up`): the stack's pods (requests equal limits) plus
  Kind's own share.
- AWS credentials that AWS accepts: STS GetCallerIdentity, so an expired SSO session or a revoked key
  is caught here, not halfway through `pulumi up`.

Prints one line per problem on stdout (check-prereqs.sh lists them with the rest) and exits 1 if
there is any; what it found goes to stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.quantity import Memory  # noqa: E402
from components.settings import Settings, SettingsError, config_from_stack_file, pods_memory  # noqa: E402
from components.stack import parse_settings  # noqa: E402
from components.topology import PROJECT  # noqa: E402

# The control plane (API server, etcd, controllers) and three kubelets with their runtimes.
KIND_SHARE = Memory.mebibytes(1024)
# `docker info` reports the Linux VM's MemTotal, which is the memory Docker Desktop's slider gives
# less what the VM's kernel keeps at boot (its code and data, and a 64-byte page struct per 4 KiB
# page: 1.6% alone; /proc/meminfo: "total usable RAM, i.e. physical RAM minus a few reserved bits
# and the kernel binary code"). The slider set to what the stack needs passes with this allowance.
KERNEL_RESERVE = 0.04


def docker_memory() -> Memory | None:
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.MemTotal}}"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = result.stdout.strip()
    return Memory(int(text)) if result.returncode == 0 and text.isdigit() else None


def docker_problem(settings: Settings) -> str | None:
    if settings.config.cluster != "kind":
        return None
    have = docker_memory()
    if have is None:
        return None  # check-prereqs.sh already names a Docker that does not answer
    need = pods_memory(settings.config) + KIND_SHARE
    print(f"Docker: {have.mib} MiB; this stack needs {need.mib} MiB", file=sys.stderr)
    if have.bytes >= need.bytes * (1 - KERNEL_RESERVE):
        return None
    setting = -(-need.mib // 1024)
    return (
        f"Docker memory: Docker has {have.mib} MiB, and stack {settings.stack} needs {need.mib} MiB "
        f"(its pods {pods_memory(settings.config).mib} MiB + Kind's own {KIND_SHARE.mib} MiB): set Docker's "
        f"memory to at least {setting} GiB (Docker reports up to {KERNEL_RESERVE:.0%} less, which its VM's "
        "kernel keeps). Raise it "
        "(Docker Desktop: Settings → Resources → Memory; colima: colima start --memory N), or lower "
        "memoryBudget and the tiers' memory keys"
    )


def aws_problem(settings: Settings) -> str | None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        sts = boto3.client("sts", region_name=settings.config.archive_region,
                           config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}))
        identity = sts.get_caller_identity()
    except NoCredentialsError:
        return ("AWS credentials: none found. Run 'aws configure' or 'aws sso login', or export "
                "AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        return (f"AWS credentials: AWS refused them ({code}). Log in again ('aws sso login' for SSO "
                "profiles) or export credentials that are current")
    except BotoCoreError as error:
        # An expired SSO token, an unreadable profile, STS out of reach: botocore says which.
        return f"AWS credentials: {error}. For SSO profiles run 'aws sso login'"
    print(f"AWS: acting as {identity['Arn']}", file=sys.stderr)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--for", dest="purpose", choices=["up", "destroy"], default="up",
                        help="destroy needs AWS, not the memory to run the stack")
    args = parser.parse_args()
    try:
        settings = parse_settings(PROJECT, args.stack, config_from_stack_file(PROJECT, args.stack))
    except SettingsError:
        return 0  # `pulumi up` reports the configuration's problems, all of them, before creating anything
    checks = [docker_problem, aws_problem] if args.purpose == "up" else [aws_problem]
    problems = [problem for problem in (check(settings) for check in checks) if problem]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
