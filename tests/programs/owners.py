"""Leaks whose owner --python-gc must name: the type that accumulates (the
root) and the chain of references that keeps it alive.
Usage: owners.py STOP SCENARIO [SCENARIO...]

STOP is a number of seconds, or a file whose appearance ends the work (90
seconds at most): a test stops it once the recording shows what it needs.

The first scenario runs in this process; each further one runs in a child
forked at the start (as in a worker pool), which prints
`scenario NAME pid PID` first. Every scenario makes work every 20 ms:

- registry: a module-level dict of Session objects, each owning several
  containers and 3 Child objects (root Session, kept by SESSIONS[<key>]);
- class-cache: a class attribute cache of Entry objects
  (root Entry, kept by Cache.entries[<key>]);
- logging: a handler with a closure callback added to a logger for every
  request and never removed (root CallbackHandler, kept by the logging
  module's own Logger.handlers);
- loggers: a logger named after each request (`logging.getLogger(name)`):
  the logging module's Manager keeps every Logger, and each Logger points
  back at the Manager (root Logger, kept by Manager.loggerDict[<key>]);
- cycle: Parent and Child objects that point at each other, the parents
  kept in a global list (root Parent, kept by TREES[i]);
- churn: thousands of dicts and lists made and dropped in bursts beside a
  slow real leak of Order objects (root Order, kept by ORDERS[i]);
- steady: Sessions made and dropped, a bounded cache: no leak.
"""

import logging
import os
import sys
import time
import uuid


class Child:
    def __init__(self, n):
        self.data = {"n": [n]}


class Session:
    def __init__(self):
        self.children = [Child(i) for i in range(3)]
        self.meta = {"seen": [], "headers": {}}


SESSIONS = {}


def registry(i):
    SESSIONS[uuid.uuid4().hex] = Session()


class Entry:
    def __init__(self, i):
        self.value = [i]


class Cache:
    entries = {}


def class_cache(i):
    Cache.entries["k%d" % i] = Entry(i)


class CallbackHandler(logging.Handler):
    def __init__(self, callback):
        super().__init__()
        self.callback = callback

    def emit(self, record):
        self.callback(record)


def logging_leak(i):
    seen = []

    def on_record(record):
        seen.append(record.getMessage())

    # A handler per request, never removed: the logger keeps them all.
    logging.getLogger("app.requests").addHandler(CallbackHandler(on_record))


def named_loggers(i):
    # Each request asks for a logger of its own name; logging never
    # forgets one.
    logging.getLogger("app.request.%s" % uuid.uuid4().hex).debug("request %d", i)


class Parent:
    def __init__(self):
        self.children = [Kid(self) for _ in range(2)]


class Kid:
    def __init__(self, parent):
        self.parent = parent


TREES = []


def cycle(i):
    TREES.append(Parent())


class Order:
    def __init__(self, i):
        self.lines = [{"sku": i}]


ORDERS = []


def churn(i):
    # Heavy churn of built-in objects: made in bursts, dropped later.
    burst = [{"i": [j]} for j in range(3000 if i % 10 < 5 else 200)]
    churn.kept = burst
    if i % 2 == 0:
        ORDERS.append(Order(i))


STEADY = {}


def steady(i):
    s = Session()
    STEADY[i % 50] = s
    del s


SCENARIOS = {
    "registry": registry,
    "class-cache": class_cache,
    "logging": logging_leak,
    "loggers": named_loggers,
    "cycle": cycle,
    "churn": churn,
    "steady": steady,
}


def run(name, stop):
    work = SCENARIOS[name]
    try:
        end, stop_file = time.monotonic() + float(stop), None
    except ValueError:
        end, stop_file = time.monotonic() + 90, stop
    i = 0
    while time.monotonic() < end:
        if stop_file is not None and i % 10 == 0 and os.path.exists(stop_file):
            break
        work(i)
        i += 1
        time.sleep(0.02)


def say(line):
    # One write per line: the forked scenarios share the pipe, and a line
    # must never be split by another's.
    os.write(1, (line + "\n").encode())


def main():
    seconds = sys.argv[1]
    names = sys.argv[2:]
    children = []
    for name in names[1:]:
        pid = os.fork()
        if pid == 0:
            say("scenario %s pid %d" % (name, os.getpid()))
            run(name, seconds)
            os._exit(0)
        children.append(pid)
    say("scenario %s pid %d" % (names[0], os.getpid()))
    run(names[0], seconds)
    for pid in children:
        os.waitpid(pid, 0)
    say("done")


main()
