"""``python -m facade.cli``: the same as the ``fhir-facade`` command."""

from facade.cli import main

main()
