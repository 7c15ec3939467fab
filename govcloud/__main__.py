"""`python -m govcloud` is the `govcloud` command."""

from govcloud.cli import main

main()
