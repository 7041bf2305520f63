#!/usr/bin/env python3
"""test_mysql.py: a database node from npm against a real server (docs/companion.md).

Starts Debian's MariaDB in a temporary data directory on a free port (as the
user running the test: no root, no system service), installs
node-red-node-mysql into a fresh userDir with `carmine install`, as a user
would (npm, network), with the fixture module of this folder, and runs a
flow where native nodes come before and after the hosted mysql node: a
native status node sees the hosted node's "connected" and starts the
queries; a parameterised SELECT and an INSERT go through it (the INSERT is
checked in the server with the mariadb client); flow context set by a native
node before the mysql node is read by a hosted node after it, whose own
write a native node reads; a bad query's error reaches a native catch node.
  tests/companion/test_mysql.py CARMINE USERDIR   (USERDIR is not used)
"""
import getpass
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CARMINE, Run, check, finish, free_port, lines, node, out, path, setp, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db")
CLIENT = shutil.which("mariadb")
if not (os.access(MARIADBD, os.X_OK) and INSTALL_DB and CLIENT):
    check("MariaDB is installed (tools/setup.sh installs mariadb-server)", False)
    finish()

# the server: a data directory of our own, TCP on 127.0.0.1 only
db, sock, port = path("db"), path("mysqld.sock"), free_port()
me = getpass.getuser()
init = subprocess.run([INSTALL_DB, "--no-defaults", "--datadir=" + db, "--user=" + me, "--skip-test-db",
                       "--auth-root-authentication-method=normal"], capture_output=True, text=True)
server = None
if init.returncode == 0:
    server = subprocess.Popen([MARIADBD, "--no-defaults", "--datadir=" + db, "--socket=" + sock, "--port=%d" % port,
                               "--bind-address=127.0.0.1", "--user=" + me, "--pid-file=" + path("mysqld.pid"),
                               "--skip-log-bin", "--innodb-buffer-pool-size=16M", "--log-error=" + path("mysqld.err")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sql(text, user="root"):
    return subprocess.run([CLIENT, "--no-defaults", "-u" + user, "-S", sock, "-N", "-B", "-e", text],
                          capture_output=True, text=True)


try:
    up = server and wait_for(lambda: sql("SELECT 1").returncode == 0, 30)
    check("MariaDB starts in a temporary data directory on port %d" % port, up,
          init.stdout + init.stderr + (open(path("mysqld.err")).read() if os.path.exists(path("mysqld.err")) else ""))
    if not up:
        finish()
    setup = sql("CREATE DATABASE carmine; CREATE USER 'carmine'@'%' IDENTIFIED BY 'secret-pw';"
                "GRANT ALL ON carmine.* TO 'carmine'@'%';"
                "CREATE TABLE carmine.readings (id INT AUTO_INCREMENT PRIMARY KEY, sensor VARCHAR(32), value DOUBLE);"
                "INSERT INTO carmine.readings (sensor, value) VALUES ('s1', 20.5), ('s2', 7), ('s1', 21.25);")
    check("the test database is created", setup.returncode == 0, setup.stderr)

    # node-red-node-mysql from npm, the way a user installs it
    ud = path("userdir")
    t0 = time.time()
    inst = subprocess.run([CARMINE, "install", "-u", ud, "node-red-node-mysql@3.0.4"], capture_output=True, text=True)
    secs = time.time() - t0
    fix = subprocess.run([CARMINE, "install", "-u", ud, os.path.join(HERE, "node-red-contrib-carmine-fixture")],
                         capture_output=True, text=True)
    check("carmine install node-red-node-mysql (npm, %.1f s) and the fixture module" % secs,
          inst.returncode == 0 and fix.returncode == 0 and
          os.path.exists(os.path.join(ud, "node_modules/node-red-node-mysql/package.json")),
          inst.stdout + inst.stderr + fix.stdout + fix.stderr)

    q = "SELECT sensor, value FROM readings WHERE sensor = ? ORDER BY id"
    flows = [
        {"id": "t1", "type": "tab", "label": "mysql"},
        {"id": "db1", "type": "MySQLdatabase", "name": "", "host": "127.0.0.1", "port": str(port), "db": "carmine",
         "tz": "", "charset": "UTF8", "credentials": {"user": "carmine", "password": "secret-pw"}},
        # a native status node sees the hosted mysql node connect, and starts the queries
        node("st", "status", [["sw"]], scope=["q1"]),
        node("sw", "switch", [["go"]], property="status.text", propertyType="msg",
             rules=[{"t": "eq", "v": "connected", "vt": "str"}], checkall="true", outputs=1),
        node("go", "change", [["sel", "ins", "bad"]], rules=[
            {"t": "set", "p": "v", "pt": "flow", "to": "s1", "tot": "str"},
            {"t": "set", "p": "nat", "pt": "flow", "to": "n1", "tot": "str"}]),
        # native before: a parameterised SELECT
        node("sel", "change", [["q1"]], rules=[
            {"t": "set", "p": "topic", "pt": "msg", "to": q, "tot": "str"},
            {"t": "set", "p": "payload", "pt": "msg", "to": "[$flowContext('v')]", "tot": "jsonata"},
            {"t": "set", "p": "kind", "pt": "msg", "to": "select", "tot": "str"}]),
        node("ins", "change", [["q1"]], rules=[
            {"t": "set", "p": "topic", "pt": "msg", "to": "INSERT INTO readings (sensor, value) VALUES (?, ?)", "tot": "str"},
            {"t": "set", "p": "payload", "pt": "msg", "to": "[\"s9\", 42.5]", "tot": "json"},
            {"t": "set", "p": "kind", "pt": "msg", "to": "insert", "tot": "str"}]),
        node("bad", "change", [["q1"]], rules=[
            {"t": "set", "p": "topic", "pt": "msg", "to": "SELECT * FROM no_such_table", "tot": "str"},
            {"t": "set", "p": "kind", "pt": "msg", "to": "bad", "tot": "str"}]),
        node("q1", "mysql", [["k"]], mydb="db1", name=""),
        # native after: by kind
        node("k", "switch", [["x1"], ["c3"]], property="kind", propertyType="msg",
             rules=[{"t": "eq", "v": "select", "vt": "str"}, {"t": "eq", "v": "insert", "vt": "str"}],
             checkall="true", outputs=2),
        # a hosted node after it reads the flow context the native node set before it
        node("x1", "carmine-ctx", [["c2"]]),
        setp("c2", [["f1"]], '$string({"rows": payload, "seen": seen.v, "hosted": $flowContext("hosted")})'),
        out("f1", "select.txt"),
        setp("c3", [["f2"]], '$string({"affected": payload.affectedRows, "id": payload.insertId})'),
        out("f2", "insert.txt"),
        # the hosted mysql node's error, in a native catch node
        node("ct", "catch", [["c4"]], scope=["q1"], uncaught=False),
        setp("c4", [["f3"]], '$string({"message": error.message, "source": error.source, "topic": topic})'),
        out("f3", "caught.txt"),
    ]
    r = Run(flows, userdir=ud, name="mysql")
    try:
        ok = wait_for(lambda: lines("select.txt") and lines("insert.txt") and lines("caught.txt"), 40)
        check("the flow ran: the native status node saw the hosted mysql node connect", ok, r.text())
        sel = json.loads((lines("select.txt") or ["{}"])[0])
        check("the SELECT's rows come out of the hosted mysql node to native nodes",
              sel.get("rows") == [{"sensor": "s1", "value": 20.5}, {"sensor": "s1", "value": 21.25}], sel)
        check("a hosted node after it reads the flow context a native node set before it (and a native node "
              "reads what it set: 'h:' + rows, as JavaScript makes it)",
              sel.get("seen") == "s1" and sel.get("hosted") == "h:[object Object],[object Object]", sel)
        ins = json.loads((lines("insert.txt") or ["{}"])[0])
        row = sql("SELECT sensor, value FROM carmine.readings WHERE id = %s" % int(ins.get("id") or 0))
        check("the INSERT went through (affectedRows 1) and the row is in the server",
              ins.get("affected") == 1 and row.stdout.split() == ["s9", "42.5"], [ins, row.stdout, row.stderr])
        err = json.loads((lines("caught.txt") or ["{}"])[0])
        check("a native catch node sees the hosted mysql node's error for a bad query, with its msg",
              err.get("message") == "Error: Table 'carmine.no_such_table' doesn't exist" and err.get("source", {}).get("id") == "q1" and err.get("source", {}).get("type") == "mysql"
              and err.get("topic") == "SELECT * FROM no_such_table", err)
    finally:
        rc = r.stop()
    check("carmine stops cleanly", rc == 0, r.text())
finally:
    if server:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
check("MariaDB stopped", server is None or server.returncode is not None)
finish()
