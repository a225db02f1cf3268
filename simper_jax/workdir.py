"""One run per workdir, and the files a run writes there written whole.

`held(workdir)` takes an exclusive lock, `workdir/run.lock`, before a run prepares or writes
anything, and keeps it until the run ends: a second start on the same workdir (another
terminal, a scheduler's retry while the first job still runs) is refused with one line saying
who holds it. The lock is the kernel's (`fcntl.flock` on the open file), so it is released
when its holder dies however it dies (kill -9 included), and the next start takes it over,
saying whose it was. The file also records the holder (pid, host, start time, command) for the
refusal's message; it is never what decides.

What a lock file can and cannot guarantee:
  - one host, a local disk: exact (the kernel arbitrates).
  - several hosts on NFS (v4, or v3 with lockd): flock is forwarded to the server on Linux,
    so the same holds; without a lock manager the lock is only local to each host.
  - a cloud bucket mounted with gcsfuse (or s3fs): no locks at all; flock succeeds on every
    host. There the guarantee is Orbax's: a checkpoint step is written to a temporary folder
    and renamed (or marked with commit_success.txt on GCS) when complete, so a reader never
    restores a half-written step, but two runs can still interleave steps. Run one job per
    workdir (the scheduler's job name, or a workdir per attempt).
  - multi-host runs: process 0 takes the lock for the run; the others write only their own
    checkpoint shards, which Orbax coordinates.
"""

import contextlib
import datetime
import errno
import fcntl
import functools
import json
import logging
import os
import re
import socket
import sys
import threading

from simper_jax import errors

LOCK_FILE = "run.lock"

# Locks this process holds: {real workdir path: (open file, depth)}. A run's train() and
# evaluation both take the lock; the process that holds it may take it again.
_HELD = {}


class WorkdirBusyError(errors.RunError):
  """Another live process holds the workdir's lock."""


def _holder_text(info: dict) -> str:
  return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started "
          f"{info.get('started', '?')}: {info.get('command', '?')}")


def _read_holder(handle) -> dict:
  handle.seek(0)
  try:
    return json.loads(handle.read() or "{}")
  except ValueError:  # written by a process killed mid-write: no details, the lock decides
    return {}


def _pid_alive(pid) -> bool:
  try:
    os.kill(int(pid), 0)
  except (OSError, ValueError, TypeError) as e:
    return isinstance(e, PermissionError)  # alive, another user's
  return True


@contextlib.contextmanager
def held(workdir: str, log=print, enabled: bool = True):
  """Holds `workdir`'s lock for the block (creating the workdir).

  Args:
    log: where the line about a lock taken over from a dead holder goes.
    enabled: False → nothing is locked (the processes of a multi-host run other than 0).

  Raises:
    WorkdirBusyError: another live process holds it; nothing in the workdir was touched
      beyond the lock file's existence.
  """
  if not enabled:
    yield
    return
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.ConfigError(f"--workdir={workdir} is a file; expected a directory (it is "
                             f"created if it does not exist).")
  created = not os.path.exists(workdir)
  os.makedirs(workdir, exist_ok=True)
  key = os.path.realpath(workdir)
  if key in _HELD:
    handle, depth = _HELD[key]
    _HELD[key] = (handle, depth + 1)
    try:
      yield
    finally:
      _HELD[key] = (handle, _HELD[key][1] - 1)
    return
  path = os.path.join(workdir, LOCK_FILE)
  handle = open(path, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    info = _read_holder(handle)
    handle.close()
    if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
      raise
    raise WorkdirBusyError(
        f"The workdir {workdir} is in use by another run ({_holder_text(info)}); it was left "
        f"untouched. Wait for that run to end, stop it, or give another --workdir.") from None
  previous = _read_holder(handle)
  if previous.get("host") == socket.gethostname() and not _pid_alive(previous.get("pid")):
    log(f"Took over the workdir lock {path} from a run that is no longer running "
        f"({_holder_text(previous)}).")
  elif previous and previous.get("pid") != os.getpid():
    # Free, yet written by a live pid or another host: that holder ended without a clean
    # release (another host's pid cannot be checked), or this filesystem has no locks.
    log(f"Took over the workdir lock {path}, free but last written by {_holder_text(previous)}"
        f" (see simper_jax/workdir.py on filesystems without locks).")
  handle.seek(0)
  handle.truncate()
  handle.write(json.dumps({
      "pid": os.getpid(), "host": socket.gethostname(),
      "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
      "command": " ".join(sys.argv)}))
  handle.flush()
  _HELD[key] = (handle, 1)
  try:
    yield
  finally:
    del _HELD[key]
    handle.seek(0)
    handle.truncate()  # a clean exit leaves no holder to report as dead
    handle.flush()
    if created and os.listdir(workdir) == [LOCK_FILE]:
      # A run stopped by a mistake before writing anything leaves no workdir behind (the
      # lock is removed while still held: a start waiting on it finds the folder gone and
      # makes its own).
      os.remove(path)
      os.rmdir(workdir)
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


# ---------------------------------------------------------------------------------------------
# A full disk.
# ---------------------------------------------------------------------------------------------
# How a full disk reads in the errors of Python, TensorStore (Orbax's arrays) and Orbax.
_DISK_FULL = re.compile(r"No space left on device|os_error_code='?28'?|\[Errno 28\]")
_QUOTED_PATH = re.compile(r'"(/[^"]+)"')


def _chain(error: BaseException):
  """The error and those it wraps (cause, context, an exception in its args)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    wrapped = next((a for a in error.args if isinstance(a, BaseException)), None)
    error = wrapped or error.__cause__ or error.__context__


def disk_full_path(error: BaseException) -> str | None:
  """The file a "no space left on device" error was writing ("" when none of the errors it
  wraps names one), or None when `error` is not one."""
  full, paths = False, []
  for e in _chain(error):
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
      full = True
      paths += [e.filename] if e.filename else []
    elif _DISK_FULL.search(str(e)):
      full = True
      paths += _QUOTED_PATH.findall(str(e))
  return (paths[0] if paths else "") if full else None


class _DiskFullRecords(logging.Filter):
  """Drops log records about a full disk: Orbax's background threads and asyncio log one
  per thread and write (forty lines of tracebacks); the run says it once, in one line."""

  def __init__(self):
    super().__init__()
    self.path = ""  # the first file a dropped record names

  def filter(self, record: logging.LogRecord) -> bool:
    path = None
    if record.exc_info and record.exc_info[1] is not None:
      path = disk_full_path(record.exc_info[1])
    if not path and _DISK_FULL.search(record.getMessage()):
      path = next(iter(_QUOTED_PATH.findall(record.getMessage())), "")
    if path is None:
      return True
    self.path = self.path or path
    silence_background_stderr()
    return False


class _MainThreadStderr:
  """sys.stderr without what other threads write to it. After a failed checkpoint write or
  read, TensorStore's callbacks into Orbax's closed event loop fail, one per pending
  operation, for seconds ("RuntimeError: Event loop is closed": unraisable exceptions, which
  sys.unraisablehook prints, not log records), over the run's own one-line message. Log
  records are not affected (their handlers hold the stream they were made with)."""

  def __init__(self, stream):
    self.stream = stream

  def write(self, text: str) -> int:
    if threading.current_thread() is not threading.main_thread():
      return len(text)
    return self.stream.write(text)

  def __getattr__(self, name):
    return getattr(self.stream, name)


def silence_background_stderr() -> None:
  """From now on, this process's sys.stderr takes only the main thread's writes: called once
  a checkpoint write or read has failed (see _MainThreadStderr)."""
  if not isinstance(sys.stderr, _MainThreadStderr):
    sys.stderr = _MainThreadStderr(sys.stderr)


def _what(path: str) -> str:
  """'checkpoint 8 (path)' for a file of a checkpoint being saved, else the path."""
  step = re.search(r"/checkpoints/(\d+)(?:\.orbax-checkpoint-tmp[^/]*)?/", path)
  return f"checkpoint {step.group(1)} ({path})" if step else path


def checkpoint_steps(workdir: str, checkpoints_dir: bool = False) -> list[int]:
  """Steps of the complete checkpoints in workdir/checkpoints (or in `workdir` itself when
  it is that folder), ascending; [] if none. Orbax renames a step's folder to its number
  only once every file is written."""
  folder = workdir if checkpoints_dir else os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(
      folder) else []


@contextlib.contextmanager
def disk_full_is_one_line(workdir: str):
  """Turns a full disk met in the block into one RunError: the file being written, what is
  safe (the last complete checkpoint) and how to resume."""
  records_filter = _DiskFullRecords()
  handlers = list(logging.getLogger().handlers)
  for handler in handlers:
    handler.addFilter(records_filter)
  unraisable_hook = sys.unraisablehook
  sys.unraisablehook = functools.partial(_drop_closed_loop_callbacks, unraisable_hook)
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except  (re-raised unless a full disk)
    path = None if isinstance(e, errors.RunError) else disk_full_path(e)
    if path is None:
      raise
    silence_background_stderr()
    steps = checkpoint_steps(workdir)
    partial = [d for d in (os.listdir(os.path.join(workdir, "checkpoints"))
                           if os.path.isdir(os.path.join(workdir, "checkpoints")) else [])
               if not d.isdigit()]
    safe = (f"checkpoint {steps[-1]} is complete"
            + (f" ({', '.join(sorted(partial))} is a partial save, ignored on resume)"
               if partial else "")
            + f"; once space is freed, run the same command again to resume from step "
              f"{steps[-1]}" if steps else
            "no checkpoint was complete yet; once space is freed, run the same command again "
            "(it starts from step 0)")
    # The file named by the error, else by a log record, else the partial save (Orbax's
    # error can reach the main thread before any record, and name no file).
    newest_partial = max(partial, key=lambda d: int(re.match(r"\d*", d).group() or -1),
                         default=None)
    path = path or records_filter.path or (
        os.path.join(workdir, "checkpoints", newest_partial, "") if newest_partial else "")
    raise errors.RunError(
        f"No space left on device while writing {_what(path) if path else 'into ' + workdir}"
        f": {safe}.") from None
  finally:
    sys.unraisablehook = unraisable_hook
    for handler in handlers:
      handler.removeFilter(records_filter)


def _drop_closed_loop_callbacks(hook, unraisable) -> None:
  """sys.unraisablehook without TensorStore's callbacks into a closed event loop: after a
  failed checkpoint write or read they come, one per pending operation, before the failure
  reaches the main thread or any log record (so `silence_background_stderr` can be late)."""
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and "Event loop is closed" in str(error):
    return
  hook(unraisable)


# ---------------------------------------------------------------------------------------------
# Files written whole.
# ---------------------------------------------------------------------------------------------
def write_atomic(path: str, content: str | bytes) -> None:
  """Writes `path` (text as UTF-8, or bytes) as a temporary file renamed over it: a crash or a
  full disk leaves the old file or the new one, never half of one."""
  temporary = f"{path}.tmp{os.getpid()}"
  binary = isinstance(content, bytes)
  try:
    with open(temporary, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
      f.write(content)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)
