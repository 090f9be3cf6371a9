"""The optional C extension ``trainguard._speedups``; everything else is in pyproject.toml.

setup.py exists only because an extension that may fail to build
(``optional=True``: no compiler, no Python headers) is not expressible in
pyproject.toml with the setuptools the project supports. Without it the
package installs and works the same, just slower: every reader has a
pure-Python path (``TRAINGUARD_NO_SPEEDUPS=1`` forces it).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "trainguard._speedups",
            sources=["src/trainguard/_speedups.c", "src/trainguard/_speedups_tb.c"],
            depends=["src/trainguard/_speedups_tb.h"],
            optional=True,
        )
    ]
)
