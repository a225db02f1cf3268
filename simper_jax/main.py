"""Entry point: python -m simper_jax.main --config=configs/rotating_digits.py:quick [--workdir=DIR]

Several processes (one per host of a TPU pod slice or GPU cluster) run the same command and
join through `jax.distributed`: add --multihost where JAX finds the cluster by itself (Cloud
TPU, Slurm, Open MPI), or give --coordinator_address, --num_processes and --process_id.

Every mistake a user can make on the command line or in the data ends the run with one line
on stderr ("Error: ...", naming the flag, field or file) and exit status 2, before anything is
prepared or compiled; SIGTERM and the first Ctrl-C save a checkpoint at the next step and
exit 143 / 130.
"""

import functools
import glob
import os
import signal
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from simper_jax import errors


def define_flags(flag_values: flags.FlagValues = flags.FLAGS,
                 argv: list[str] | None = None) -> dict:
  """The command's flags, defined in `flag_values` and returned by name: absl's global flags
  when the command runs; a fresh FlagValues and the `argv` it will parse (ml_collections
  registers a --config.FIELD flag for each override it finds there, sys.argv by default) to
  parse command lines in a process that parses others too (the README's test)."""
  defined = dict(flag_values=flag_values)
  return {
      "config": config_flags.DEFINE_config_file("config", None, "Config file (ml_collections).",
                                                lock_config=True, sys_argv=argv, **defined),
      "workdir": flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, "
                                     "results; default workdir/<config name>[_<variant>].",
                                     **defined),
      "mode": flags.DEFINE_enum("mode", "train", ["train", "eval"],
                                "train: train (resuming if possible) then evaluate; eval: "
                                "evaluate the latest checkpoint in --workdir.", **defined),
      "multihost": flags.DEFINE_bool(
          "multihost", False, "Join the other processes of this run with jax.distributed, "
          "which finds the cluster by itself on Cloud TPU pods, Slurm and Open MPI.",
          **defined),
      "coordinator_address": flags.DEFINE_string(
          "coordinator_address", None, "host:port of process 0, for clusters JAX does not "
          "detect (e.g. several GPU hosts); needs --num_processes and --process_id.",
          **defined),
      "num_processes": flags.DEFINE_integer("num_processes", None, "Processes in the run.",
                                            **defined),
      "process_id": flags.DEFINE_integer("process_id", None, "This process's index, 0 first.",
                                         **defined),
  }


# ---------------------------------------------------------------------------------------------
# Command-line mistakes. ml_collections reports them as tracebacks (a misspelt field is a
# KeyError inside an AttributeError; a config file that does not exist only fails when the
# config is first read, after the run has started); we find the cause and say it in one line.
# ---------------------------------------------------------------------------------------------
def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing, with every mistake turned into `errors.fail(one line)`."""
  try:
    remaining = flag_values(argv)
  except Exception as error:  # pylint: disable=broad-except  (any parse error is the user's)
    errors.fail(describe_flag_error(error, argv))
  config = flag_values["config"].value
  if config is None:
    errors.fail("--config is required, e.g. --config=configs/rotating_digits.py:quick.")
  try:
    config.get("seed")  # a config file that could not be loaded raises only when read
  except Exception as error:  # pylint: disable=broad-except
    errors.fail(describe_flag_error(error, argv))
  return remaining

def describe_flag_error(error: BaseException, argv: list[str]) -> str:
  spec = _flag_value(argv, "config")
  if spec is not None:
    path = spec.partition(":")[0]
    if not os.path.isfile(path):
      shipped = sorted(glob.glob(os.path.join("configs", "*.py")))
      shipped = [p for p in shipped if not os.path.basename(p).startswith(("_", "common"))]
      return (f"--config={spec}: the file {path} does not exist"
              + (f"; the configs here are {', '.join(shipped)}." if shipped else "."))
  cause = _root_cause(error)
  if isinstance(cause, KeyError):
    # A field that is not in the config: ml_collections' message is "'name'\nDid you mean ...".
    text = cause.args[0] if cause.args else ""
    lines = [line for line in str(text).splitlines() if line.strip()]
    field = lines[0].strip("'\"") if lines else "?"
    override = next((a.split("=")[0] for a in argv if a.startswith("--config.")
                     and field in a.split("=")[0].split(".")), f"--config.{field}")
    hint = " " + " ".join(lines[1:]) if len(lines) > 1 else ""
    return f"{override}: the config has no field {field!r}.{hint}"
  text = str(cause)
  if "Error whilst parsing config file" in text:
    # get_config raised (an unknown variant, ...): its traceback is flattened into the text;
    # the last line is the exception and its message.
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    return f"--config={spec}: {last.partition(': ')[2] or last}"
  return " ".join(text.split())


def _root_cause(error: BaseException) -> BaseException:
  """The innermost exception of a chain of wrappers (args, __cause__, __context__)."""
  seen = set()
  while id(error) not in seen:
    seen.add(id(error))
    if error.args and isinstance(error.args[0], BaseException):
      error = error.args[0]
    elif error.__cause__ is not None:
      error = error.__cause__
    elif isinstance(error, (AttributeError, OSError)) and error.__context__ is not None:
      error = error.__context__
    else:
      break
  return error


def _flag_value(argv: list[str], name: str) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def initialize_distributed(defined: dict) -> None:
  """Calls jax.distributed.initialize when this process is one of several."""
  import jax  # pylint: disable=g-import-not-at-top  (see main)
  explicit = tuple(defined[name].value
                   for name in ("coordinator_address", "num_processes", "process_id"))
  if any(v is not None for v in explicit):
    if any(v is None for v in explicit):
      errors.fail("--coordinator_address, --num_processes and --process_id go together; give all "
                  "three (or --multihost on a cluster JAX detects).")
    _, num_processes, process_id = explicit
    if not 0 <= process_id < num_processes:
      errors.fail(f"--process_id={process_id} must be in [0, --num_processes={num_processes}).")
    jax.distributed.initialize(*explicit)
  elif defined["multihost"].value:
    jax.distributed.initialize()


def default_workdir(config_flag: flags.Flag) -> str:
  """workdir/scamps_synthetic for --config=configs/scamps.py:synthetic, etc."""
  path, _, arg = config_flags.get_config_filename(config_flag).partition(":")
  stem = os.path.splitext(os.path.basename(path))[0]
  return os.path.join("workdir", "_".join([stem] + [v for v in arg.split(",") if v]))


def main(argv, defined: dict, flag_values: flags.FlagValues = flags.FLAGS):
  """The command, its flags parsed into `flag_values` (absl's global ones, or the fresh ones
  of `define_flags` when a test runs the command in its own process)."""
  if len(argv) > 1:
    errors.fail(f"unexpected arguments {argv[1:]}; flags are --name=value.")
  if "verbosity" not in flag_values or not flag_values["verbosity"].present:
    # Orbax and TFDS log every file operation at INFO; keep the console to our progress lines.
    logging.set_verbosity(logging.WARNING)
  workdir = defined["workdir"].value or default_workdir(flag_values["config"])
  # JAX and the training code (3 s of imports) load only now: a mistake on the command line
  # is answered before them, in a fraction of a second.
  from simper_jax import run, train  # pylint: disable=g-import-not-at-top
  initialize_distributed(defined)
  try:
    config = defined["config"].value
    if defined["mode"].value == "train":
      run.train_and_evaluate(config, workdir)
    else:
      run.evaluate_checkpoint(config, workdir)
  except train.Preempted as stopped:
    # 128 + the signal, as if it had ended the process (143 SIGTERM, 130 Ctrl-C): schedulers
    # that requeue on a non-zero exit do so, and the checkpoint is already safe.
    sys.exit(128 + stopped.signum)
  except KeyboardInterrupt:
    # A second Ctrl-C during training, or one outside the training loop (data preparation,
    # compilation, evaluation): stop now. Preparation writes into a temporary folder and
    # checkpoints are written whole, so nothing half-done is left to be mistaken for done.
    # A checkpoint save still in flight is abandoned: its background threads would log
    # tracebacks as the interpreter shuts them down.
    logging.set_verbosity(logging.FATAL)
    print("\nStopped by Ctrl-C; nothing since the last checkpoint was saved. Run the same "
          "command again to resume from it.", file=sys.stderr, flush=True)
    # os._exit, not sys.exit: interpreter shutdown with JAX's and grain's threads caught
    # mid-work has crashed (a segfault at exit after Ctrl-C during compilation).
    sys.stdout.flush()
    os._exit(128 + signal.SIGINT)
  except (errors.ConfigError, errors.DataError) as e:
    # A config value or the user's data is wrong: the message says what to fix; a traceback
    # would only bury it.
    errors.fail(str(e))
  except errors.RunError as e:
    # A fault the user resolves (the workdir in use, a full disk, a diverging loss). Said in
    # one line, then os._exit: Orbax's save threads may still be failing on the full disk,
    # and would print tracebacks as the interpreter shut them down.
    logging.set_verbosity(logging.FATAL)
    print(f"Error: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)


if __name__ == "__main__":
  app.run(functools.partial(main, defined=define_flags()), flags_parser=parse_flags)
