"""The folder ``trainguard run`` puts first on the child's ``PYTHONPATH``: it holds only ``sitecustomize.py``."""
