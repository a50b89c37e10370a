"""Run the CLI as a user the file system's permission bits apply to.

Tests often run as root, and root ignores permission bits: a "read-only" folder
is writable to it. So the command runs in a forked child of the test process
that, when the tests run as root, first drops to the unprivileged ``nobody``
(the interpreter and simledger are already loaded, so nothing has to be read
from a folder ``nobody`` cannot enter; run the same command once as yourself
first, so that the modules it imports lazily are loaded too). Run as another
user, the child keeps it: the bits bind that user already.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NOBODY = 65534


def shared_folder() -> Path:
    """Return a fresh folder the unprivileged user can traverse (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="simledger-perm-"))
    folder.chmod(0o755)
    return folder


def remove_folder(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


def run_cli(*args) -> subprocess.CompletedProcess:
    """Run `simledger ARGS` in a forked child bound by permission bits; return its exit code and output."""
    from simledger.cli.main import app

    argv = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
                app(argv, prog_name="simledger")
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), out.read().decode(),
                                           err.read().decode())
