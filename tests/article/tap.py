"""tap.py: the one "ok - / not ok - " line per check the article tests print,
and the count of failures their exit status comes from."""

failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else "  (" + detail + ")"))
    if not cond:
        failures += 1
