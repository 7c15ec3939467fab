"""The Pulumi program's entry point; everything it builds is in infra/program.py."""

from infra.program import main

main()
