"""The embedded stack: every platform component as a real, supervised process on loopback.

``components`` says what to run, ``supervisor`` runs it (a small daemon with restart and
readiness), ``control`` is what the CLI calls (up, down, status), ``state`` is the file they share.
"""
