"""``python -m asyncstream``: the same command as the ``asyncstream`` script."""

from .cli import main

if __name__ == "__main__":
    main()
