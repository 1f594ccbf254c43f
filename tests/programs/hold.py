"""Holds MIB mebibytes of anonymous memory, says "ready", then waits for
its standard input to close and exits. Usage: hold.py MIB"""
import sys

block = bytearray(int(sys.argv[1]) * 1024 * 1024)  # zero-filled: resident
print("ready", flush=True)
sys.stdin.read()
