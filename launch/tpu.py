r"""Creates a Cloud TPU VM or pod slice, installs this repo on every worker, starts a run.

    python launch/tpu.py --name=simper-v4 --zone=us-central2-b --accelerator=v4-32 \
        --project=my-project [--dry-run] -- \
        --config=configs/scamps.py --workdir=/mnt/shared/scamps

Everything after `--` goes to `python -m simper_jax.main` on every worker; on a multi-host
slice the script adds --multihost, so the workers join through jax.distributed. Steps (each
one printed before it runs; --dry-run prints them all and runs none):
  1. gcloud compute tpus tpu-vm create   (skipped with --skip-create, e.g. to rerun after a
                                          preemption: the run resumes from its checkpoint)
  2. git archive of HEAD (committed files only: no data, checkpoints or venvs) → scp to all
  3. unpack and pip install on all workers (one venv each, with jax[tpu])
  4. the run on all workers at once, via gcloud compute tpus tpu-vm ssh --worker=all
     (skipped with --install-only; launch/sweep.py --tpu=NAME then runs a sweep there)
The workdir must be a path every worker can write (a Filestore/NFS mount or a gcsfuse mount
of a bucket): checkpoints are written by all of them together.
"""

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Sequence

# family: (accelerator-type pattern, allowed sizes, size unit, default runtime, hosts(size))
# Sizes count TensorCores for v4/v5p (2 per chip) and chips for v5e/v6e; hosts hold 4 chips,
# except single-host slices (v5e/v6e up to 8 chips). Runtimes: Cloud TPU's "TPU software
# versions" page (v4 and older: tpu-ubuntu2204-base; v5e, v5p, v6e: the v2-alpha images).
FAMILIES = {
    "v4": ("v4-{n}", range(8, 4097, 8), "TensorCores", "tpu-ubuntu2204-base",
           lambda n: n // 8),
    "v5p": ("v5p-{n}", range(8, 12289, 8), "TensorCores", "v2-alpha-tpuv5",
            lambda n: n // 8),
    "v5e": ("v5litepod-{n}", (1, 4, 8, 16, 32, 64, 128, 256), "chips", "v2-alpha-tpuv5-lite",
            lambda n: 1 if n <= 8 else n // 4),
    "v6e": ("v6e-{n}", (1, 4, 8, 16, 32, 64, 128, 256), "chips", "v2-alpha-tpuv6e",
            lambda n: 1 if n <= 8 else n // 4),
}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REMOTE_DIR = "~/simper_jax"
ARCHIVE = "simper_jax.tar.gz"


@dataclasses.dataclass(frozen=True)
class Accelerator:
  name: str  # e.g. "v4-32"
  family: str  # key of FAMILIES
  size: int
  hosts: int
  default_runtime: str


def parse_accelerator(name: str) -> Accelerator:
  """'v4-32' → Accelerator(hosts=4, ...); ValueError listing the known types otherwise."""
  for family, (pattern, sizes, _, runtime, hosts) in FAMILIES.items():
    match = re.fullmatch(pattern.replace("{n}", r"(\d+)"), name)
    if match and int(match.group(1)) in sizes:
      n = int(match.group(1))
      return Accelerator(name, family, n, hosts(n), runtime)
  def allowed(sizes):
    if isinstance(sizes, range):
      return f"a multiple of {sizes.step} from {sizes.start} to {sizes[-1]}"
    return f"one of {list(sizes)}"

  known = "; ".join(f"{pattern.format(n='N')} with N {allowed(sizes)} ({unit})"
                    for pattern, sizes, unit, _, _ in FAMILIES.values())
  raise ValueError(f"--accelerator={name!r} is not a TPU type this script knows: {known}.")


def gcloud_flags(args) -> list[str]:
  return [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])


def ssh_all(args, remote_command: str) -> list[str]:
  """The command that runs `remote_command` on every worker of the TPU at once."""
  return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.name, "--worker=all",
          *gcloud_flags(args), f"--command={remote_command}"]


def run_command(args, accelerator: Accelerator, main_args: Sequence[str]) -> list[str]:
  """Step 4: `python -m simper_jax.main` on every worker (with --multihost on a pod).

  Attached, gcloud streams every worker's output here and returns when the run ends; with
  --detach the run goes on after this script (and your laptop) disconnect, logging to
  ~/simper_jax/run.log on each worker.
  """
  flags = list(main_args) + (["--multihost"] if accelerator.hosts > 1 else [])
  main = f".venv/bin/python -m simper_jax.main {shlex.join(flags)}"
  if getattr(args, "detach", False):
    return ssh_all(args, f"cd {REMOTE_DIR} && nohup {main} > run.log 2>&1 &")
  return ssh_all(args, f"cd {REMOTE_DIR} && {main} 2>&1 | tee -a run.log")


def command_sequence(args, accelerator: Accelerator, main_args: Sequence[str],
                     archive: str) -> list[list[str]]:
  """Every command of steps 1–4, in order."""
  runtime = args.runtime or accelerator.default_runtime
  commands = []
  if not args.skip_create:
    commands.append(["gcloud", "compute", "tpus", "tpu-vm", "create", args.name,
                     *gcloud_flags(args), f"--accelerator-type={accelerator.name}",
                     f"--version={runtime}"] + (["--spot"] if args.spot else []))
  commands.append(["git", "-C", REPO, "archive", "--format=tar.gz", f"--output={archive}",
                   "HEAD"])
  commands.append(["gcloud", "compute", "tpus", "tpu-vm", "scp", archive,
                   f"{args.name}:{ARCHIVE}", "--worker=all", *gcloud_flags(args)])
  install = (f"set -e; rm -rf {REMOTE_DIR} && mkdir -p {REMOTE_DIR} && "
             f"tar -xzf {ARCHIVE} -C {REMOTE_DIR} && cd {REMOTE_DIR} && "
             f"(python3 -m venv .venv || (sudo apt-get -qq update && "
             f"sudo apt-get -qq install -y python3-venv && python3 -m venv .venv)) && "
             f".venv/bin/pip install -q -U pip && .venv/bin/pip install -q -e . 'jax[tpu]'")
  commands.append(ssh_all(args, install))
  if not args.install_only:
    commands.append(run_command(args, accelerator, main_args))
  return commands


def split_at_double_dash(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """(this script's arguments, the arguments after `--` for simper_jax.main)."""
  argv = list(argv)
  if "--" not in argv:
    return argv, []
  return argv[:argv.index("--")], argv[argv.index("--") + 1:]


def parse_args(argv: Sequence[str]):
  own, main_args = split_at_double_dash(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--name", required=True, help="TPU VM / pod slice name.")
  parser.add_argument("--zone", required=True, help="e.g. us-central2-b (v4), us-east5-a.")
  parser.add_argument("--accelerator", required=True,
                      help="TPU type, e.g. v4-8, v4-32, v5litepod-16, v5p-64, v6e-16.")
  parser.add_argument("--project", help="GCP project; default: gcloud's configured one.")
  parser.add_argument("--runtime", help="TPU software version; default: the one Cloud TPU "
                                        "recommends for the accelerator's family.")
  parser.add_argument("--spot", action="store_true", help="Create a Spot TPU (cheaper, may "
                      "be preempted: the run saves on SIGTERM and resumes when rerun).")
  parser.add_argument("--skip-create", action="store_true",
                      help="The TPU exists already: copy, install and run only.")
  parser.add_argument("--install-only", action="store_true",
                      help="Create, copy and install, but start no run (e.g. before "
                           "launch/sweep.py --tpu=NAME).")
  parser.add_argument("--detach", action="store_true",
                      help="Start the run in the background on the workers and return.")
  parser.add_argument("--dry-run", action="store_true", help="Print the commands, run none.")
  args = parser.parse_args(own)
  if not args.install_only and not any(a.startswith("--config") for a in main_args):
    parser.error("give the run's flags after `--`, at least --config=... (and a --workdir "
                 "every worker can write).")
  return args, main_args


def check_gcloud() -> None:
  if shutil.which("gcloud") is None:
    raise SystemExit("Error: gcloud not found on PATH. Install the Google Cloud CLI "
                     "(https://cloud.google.com/sdk/docs/install) and run `gcloud auth login`; "
                     "or use --dry-run to see the commands.")


def execute(commands: list[list[str]], dry_run: bool) -> None:
  """Prints each command, then runs it (unless `dry_run`); stops at the first that fails."""
  for i, command in enumerate(commands):
    print(f"$ {shlex.join(command)}", flush=True)
    if not dry_run:
      code = subprocess.run(command, check=False).returncode
      if code:
        raise SystemExit(f"Error: step {i + 1} of {len(commands)} exited with status {code} "
                         f"(its output is above); the steps after it did not run.")


def main(argv: Sequence[str]) -> None:
  args, main_args = parse_args(argv)
  try:
    accelerator = parse_accelerator(args.accelerator)
  except ValueError as e:
    raise SystemExit(f"Error: {e}") from None
  if not args.dry_run:
    check_gcloud()
  print(f"# {accelerator.name}: {accelerator.hosts} host(s), runtime "
        f"{args.runtime or accelerator.default_runtime}", flush=True)
  execute(command_sequence(args, accelerator, main_args, f"/tmp/{ARCHIVE}"), args.dry_run)


if __name__ == "__main__":
  main(sys.argv[1:])
