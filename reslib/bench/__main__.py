"""``python -m reslib.bench``: see :mod:`reslib.bench`."""

from reslib.bench import main

if __name__ == "__main__":
    main()
