"""Reporters: a :class:`~trainguard.diagnosis.Diagnosis` rendered for people and tools.

They compose, never compute: ``terminal`` (rich renderables), ``markdown``
(a report in the spirit of the seed documents) and ``json`` (the stable
``--json`` contract) all read the same Diagnosis. Each is imported on use, so
``trainguard analyze --json`` never loads rich tables or plotting code it
does not need; the HTML report with plots imports matplotlib inside its
function.
"""
