"""A throwaway PostgreSQL server for haven's end-to-end tests: tests/pg/pg_server.c in Python
(tests/pg/README.md says how and why).

PgServer() runs initdb in a new temporary directory and starts the server with pg_ctl,
listening only on a Unix socket in that directory (listen_addresses='', no TCP), with a "haven"
superuser (trust authentication) and a "haven" database. The programs come from
/usr/lib/postgresql/<newest>/bin (Debian's place; HAVEN_PG_BINDIR overrides it) or PATH. As
root (CI), the directory belongs to the "postgres" user (else "nobody") and initdb, pg_ctl and
the guard run as that user: initdb refuses root.

A guard process, started before initdb in a session of its own, stops the server (pg_ctl stop
-m immediate) and removes the directory when its stdin closes: in stop(), or when the test
program exits, crashes or is killed, even with its whole process group (Meson's timeout).

Standard library only.
"""
import glob
import os
import pwd
import random
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse

DB = "haven"
USER = "haven"


def find_bindir():
    """The directory with initdb and pg_ctl, or None."""
    env = os.environ.get("HAVEN_PG_BINDIR")
    if env:
        return env
    best, best_major = None, -1
    for bindir in glob.glob("/usr/lib/postgresql/*/bin"):
        try:
            major = int(os.path.basename(os.path.dirname(bindir)).split(".")[0])
        except ValueError:
            continue
        if major > best_major and all(os.access(os.path.join(bindir, p), os.X_OK)
                                      for p in ("initdb", "pg_ctl")):
            best, best_major = bindir, major
    if best:
        return best
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def server_user():
    """The pwd entry of the user the server programs run as: None (ourselves) unless root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if pw.pw_uid != 0:
            return pw
    raise RuntimeError("running as root, and there is neither a postgres nor a nobody user to "
                       "run initdb and the server as")


class PgServer:
    """A running PostgreSQL server; stop() (or the end of the program) removes it."""

    def __init__(self, max_connections=60):
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                               "not in /usr/lib/postgresql/*/bin nor on PATH "
                               "(tools/install-deps.sh installs postgresql-15; HAVEN_PG_BINDIR "
                               "names another place)")
        self.user = server_user()
        self.guard = None
        # A short parent: the socket path (dir + "/.s.PGSQL.<port>") must fit in 107 bytes;
        # and as root, one the server's user can reach.
        parent = tempfile.gettempdir()
        if self.user is not None or len(parent) > 60:
            parent = "/tmp"
        self.dir = tempfile.mkdtemp(prefix="haven-pg-", dir=parent)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        # The socket is private to dir, so any port number does; it names the socket file.
        self.port = random.randrange(20000, 30000)
        try:
            if self.user is not None:
                os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
            self._start_guard()
            self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-A", "trust",
                       "-U", USER, "--no-sync", "-E", "UTF8", "--locale=C"])
            opts = (f"-k {shlex.quote(self.dir)} -p {self.port} -c listen_addresses='' -F "
                    f"-c max_connections={max_connections}")
            try:
                self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log,
                           "-o", opts, "-w", "-t", "120", "start"])
            except RuntimeError as e:
                raise RuntimeError(f"{e}\nserver.log:\n{self.log_text()}") from None
            self.psql("CREATE DATABASE " + DB, db="postgres")
        except BaseException:
            self.stop()
            raise

    def _as_user(self):
        """subprocess keyword arguments that run a program as the server's user."""
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _start_guard(self):
        # Waits for EOF on stdin, then stops the server (if it runs) and removes everything.
        script = ('cat >/dev/null 2>&1; [ -f "$2/postmaster.pid" ] && '
                  '"$1" -D "$2" stop -m immediate -w -t 30 >/dev/null 2>&1; rm -rf "$3"')
        self.guard = subprocess.Popen(
            ["/bin/sh", "-c", script, "haven-test-pg-guard", os.path.join(self.bindir, "pg_ctl"),
             self.data, self.dir], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=self.dir, start_new_session=True, **self._as_user())

    def _run(self, argv):
        out = subprocess.run(argv, cwd=self.dir, capture_output=True, text=True, timeout=180,
                             **self._as_user())
        if out.returncode != 0:
            raise RuntimeError(f"{os.path.basename(argv[0])} failed ({out.returncode}):\n"
                               f"{out.stdout}{out.stderr}")

    def uri(self, db=DB, params=None):
        """The libpq URI of database db: postgresql://haven@/db?host=DIR&port=PORT[&params]."""
        q = f"host={urllib.parse.quote(self.dir, safe='/')}&port={self.port}"
        return f"postgresql://{USER}@/{db}?{q}" + (f"&{params}" if params else "")

    def psql(self, sql, db=DB):
        """Runs sql with psql; returns its rows, each a list of column strings."""
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                              "-h", self.dir, "-p", str(self.port), "-U", USER, "-d", db,
                              "-c", sql], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed ({out.returncode}): {out.stderr}")
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """Stops the server and removes its directory (waits for both). Never raises."""
        if self.guard is not None:
            try:
                self.guard.stdin.close()
                self.guard.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.guard = None
        # The guard removes the directory; what it could not (started as another user) goes.
        deadline = time.monotonic() + 5
        while os.path.exists(self.dir) and time.monotonic() < deadline:
            shutil.rmtree(self.dir, ignore_errors=True)
            if os.path.exists(self.dir):
                time.sleep(0.1)


if __name__ == "__main__":
    # A self-check: start, query, stop.
    pg = PgServer()
    try:
        print(pg.uri(), pg.psql("SELECT version()"))
    finally:
        pg.stop()
    print("stopped; dir gone:", not os.path.exists(pg.dir))
