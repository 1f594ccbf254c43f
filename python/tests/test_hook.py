"""The hook's own tests: chains named as a person writes them, nothing
kept alive, tracemalloc keys that tell callers apart, and the thread's
lines on a real channel. Run: cd python && python3 -m unittest discover -s tests -t ."""

import gc
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import unittest
import weakref

import memtrail_hook
from memtrail_hook import census, chains, owners

HOOK_FILES = census.skipped_files()
MODULE = __name__


class Item:
    def __init__(self, n):
        self.payload = [n]
        self.meta = {"tags": []}


REGISTRY = {}


class Cache:
    entries = []


class Board:
    def __init__(self):
        self.entries = {}


class Entry:
    def __init__(self, board):
        self.board = board


def fill_board(n):
    board = REGISTRY["main"] = Board()
    for i in range(n):
        board.entries["e%d" % i] = Entry(board)


def make_callback():
    kept = Item(0)

    def callback():
        return kept

    return callback


CALLBACK = make_callback()


def walk(objects):
    return chains.walk(objects, time.monotonic() + 5, HOOK_FILES, {id(objects)})


def texts(results):
    found, _ = chains.merge(results)
    return found[0]["steps"] if found else None


class Chains(unittest.TestCase):
    def tearDown(self):
        REGISTRY.clear()
        del Cache.entries[:]

    def test_a_module_global_dict_is_named_with_an_abstract_key(self):
        for i in range(4):
            REGISTRY["k%d" % i] = Item(i)
        self.assertEqual(
            texts(walk(list(REGISTRY.values()))), ["%s.REGISTRY" % MODULE, "[<key>]"]
        )

    def test_one_sample_keeps_its_concrete_key(self):
        REGISTRY["only"] = Item(1)
        self.assertEqual(texts(walk([REGISTRY["only"]])), ["%s.REGISTRY" % MODULE, "['only']"])

    def test_a_class_attribute_and_an_instance_attribute(self):
        for i in range(3):
            Cache.entries.append(Item(i))
        samples = [e.payload for e in Cache.entries]
        self.assertEqual(
            texts(walk(samples)), ["%s.Cache.entries" % MODULE, "[i]", "Item.payload"]
        )

    def test_a_closure_variable(self):
        kept = CALLBACK.__closure__[0].cell_contents
        self.assertEqual(
            texts(walk([kept])),
            ["%s.CALLBACK" % MODULE, "make_callback.<locals>.callback.<closure kept>"],
        )

    def test_a_local_of_a_running_function(self):
        mine = Item(7)
        steps = texts(walk([mine]))
        self.assertEqual(steps, ["test_a_local_of_a_running_function() local mine"])

    def test_a_registry_its_entries_point_back_to_still_leads_to_its_anchor(self):
        # Like logging's Manager: it keeps every entry and every entry
        # points back at it, so the level above it is thousands wide.
        # (Filled by a function: before Python 3.11 a local of this test
        # would be an anchor of its own.)
        fill_board(2000)
        samples = [REGISTRY["main"].entries["e%d" % i] for i in range(4)]
        self.assertEqual(
            texts(walk(samples)),
            ["%s.REGISTRY" % MODULE, "['main']", "Board.entries", "[<key>]"],
        )

    def test_builtin_samples_walked_alongside_do_not_hide_the_way_up(self):
        # The hook walks every growing type at once, built-in containers
        # among them: a dict being sampled does not make every dict a peer.
        fill_board(2000)
        entries = [REGISTRY["main"].entries["e%d" % i] for i in range(4)]
        REGISTRY["extra"] = ({"a": [1]}, [[2]])
        samples = entries + [REGISTRY["extra"][0], REGISTRY["extra"][1]]
        results = walk(samples)
        steps = [s.concrete for s in results[0][0]]
        self.assertEqual(steps, ["%s.REGISTRY" % MODULE, "['main']", "Board.entries", "['e0']"])

    def test_an_object_held_only_from_c_says_so(self):
        # atexit keeps its callbacks where the gc cannot see them.
        import atexit

        samples = [Item(4)]
        atexit.register(samples[0].__init__)
        try:
            results = walk(samples)
            steps = texts(results)
            # Before Python 3.10 the atexit module lets the gc see its
            # callbacks, and is the anchor.
            self.assertIn(steps[0], (chains.OUTSIDE, "atexit"))
            self.assertEqual(steps[1:], ["<bound method Item.__init__>"])
            self.assertIsNone(results[0][1])
        finally:
            atexit.unregister(samples[0].__init__)

    def test_the_owner_is_the_first_instance_of_another_class_above(self):
        REGISTRY["a"] = Item(1)
        results = walk([REGISTRY["a"].payload])
        self.assertEqual(results[0][1], "%s.Item" % MODULE)
        _, owners_found = chains.merge(results)
        self.assertEqual(owners_found, {"%s.Item" % MODULE: 1})


class Safety(unittest.TestCase):
    def test_walks_and_holdings_keep_nothing_alive(self):
        items = [Item(i) for i in range(5)]
        for i, item in enumerate(items):
            REGISTRY[i] = item
        refs = [weakref.ref(i) for i in items]
        walk(items)
        owners.holdings(items, {"list", "dict"}, set())
        REGISTRY.clear()
        del items, item
        gc.collect()
        self.assertEqual([r for r in refs if r() is not None], [])

    def test_a_round_leaves_no_cyclic_garbage(self):
        # Garbage in cycles waits for a full collection: the hook's work
        # must be freed by reference counting alone.
        for i in range(4):
            REGISTRY[i] = Item(i)
        items = list(REGISTRY.values())
        gc.collect()
        gc.disable()
        try:
            found, _ = chains.merge(walk(items))
            owners.holdings(items, {"list", "dict"}, set())
            census.gc_census({"%s.Item" % MODULE}, 4, {})
            left = gc.collect()
        finally:
            gc.enable()
            REGISTRY.clear()
        self.assertEqual(left, 0)
        self.assertTrue(found)

    def test_holdings_count_what_one_instance_holds_and_not_what_is_shared(self):
        shared = {"config": []}
        items = [Item(i) for i in range(4)]
        for item in items:
            item.config = shared
        held = dict(owners.holdings(items, {"list", "dict"}, set()))
        # payload, meta["tags"]; meta. The shared config is not counted.
        self.assertEqual(held, {"list": 2, "dict": 1})


def helper():
    return [bytearray(4000) for _ in range(50)]


def caller_a():
    return helper()


def caller_b():
    return helper()


class Tracemalloc(unittest.TestCase):
    def test_a_shared_helper_is_told_apart_by_its_callers(self):
        tracemalloc.start(3)
        try:
            a, b = caller_a(), caller_b()
            counts = census.tracemalloc_census(3, HOOK_FILES)
        finally:
            tracemalloc.stop()
        # (Before Python 3.12 the comprehension is a frame of its own, so the
        # list it builds is a small site of its own: only the bytearrays.)
        keys = [
            k
            for k, n in counts.items()
            if k.endswith("test_hook.py:%d" % (helper.__code__.co_firstlineno + 1)) and n > 100_000
        ]
        self.assertEqual(len(keys), 2, counts)
        self.assertTrue(any("test_hook.py:%d" % (caller_a.__code__.co_firstlineno + 1) in k for k in keys))
        del a, b

    def test_the_fast_grouping_agrees_with_tracemalloc_statistics(self):
        tracemalloc.start(3)
        try:
            kept = caller_a()
            snapshot = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()

        class Plain:
            # Without the raw traces: `statistics` it is.
            traces = None

            def statistics(self, group):
                return snapshot.statistics(group)

        fast = census._grouped(snapshot, 3)
        slow = census._grouped(Plain(), 3)
        self.assertEqual(sorted(fast), sorted(slow))
        del kept


class Runner(unittest.TestCase):
    def test_the_thread_writes_censuses_and_retention_and_stops(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "events")
            open(path, "w").close()
            memtrail_hook.start(
                path, {"sources": ["gc"], "interval": 0.05, "chains_every": 0.2}
            )
            end = time.monotonic() + 2.0
            i = 0
            while time.monotonic() < end:
                REGISTRY["r%d" % i] = Item(i)
                i += 1
                time.sleep(0.005)
            memtrail_hook.stop()
            self.assertFalse(
                any(t.name == "memtrail-census" for t in threading.enumerate())
            )
            with open(path) as f:
                lines = [json.loads(l) for l in f]
        REGISTRY.clear()
        self.assertTrue(all(len(json.dumps(l)) < 4096 for l in lines))
        retention = [
            l["retention"] for l in lines if "retention" in l and l["retention"]["type"] == "%s.Item" % MODULE
        ]
        self.assertTrue(retention, lines[-3:])
        self.assertEqual(retention[-1]["chains"][0]["steps"], ["%s.REGISTRY" % MODULE, "[<key>]"])
        # Naming an attribute on a chain makes the instance's __dict__ an
        # object of its own (Python 3.11+): one more dict, at most.
        self.assertEqual(retention[-1]["holds"]["list"], 2)
        self.assertIn(retention[-1]["holds"]["dict"], (1, 2))
        self.assertFalse(retention[-1]["native"])
        counted = [l for l in lines if "census" in l]
        self.assertIn("%s.Item" % MODULE, counted[-1]["census"]["counts"])


if __name__ == "__main__":
    unittest.main()
