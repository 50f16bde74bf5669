"""`python -m tracefix`: the same as the `tracefix` console script."""

from tracefix.cli.main import main

main()
