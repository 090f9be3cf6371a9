"""trainguard's zero-code instrumentation, loaded by Python's ``site`` at the start of every child process.

``trainguard run`` puts this folder first on the child's ``PYTHONPATH``, so
every Python process of the job (the script, torchrun/accelerate/deepspeed
launchers and each rank they spawn, which inherit the environment) runs this
file at start-up, as ``opentelemetry-instrument`` and ``ddtrace-run`` do.
It costs one import hook: nothing of trainguard, transformers or lightning is
imported until the script itself imports a Trainer (see
``trainguard.live.instrument``).

It first runs the ``sitecustomize`` that would have run without us (a
distribution's or a virtualenv's), so the job behaves as it would unwrapped.
Any failure here prints one line and lets the job start unguarded: the
signal fallback of ``trainguard run`` still applies.
"""

import os as _os
import sys as _sys


def _chain() -> None:
    """Run the next ``sitecustomize`` on sys.path (the one we shadow), if there is one."""
    import importlib.machinery
    import importlib.util

    here = _os.path.dirname(_os.path.abspath(__file__))
    rest = [p for p in _sys.path if _os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)


# module that defines a Trainer -> (trainguard module, function) called with it once it has loaded
_TARGETS = {
    "transformers.trainer": ("trainguard.live.instrument", "patch_hf"),
    "lightning.pytorch.trainer.trainer": ("trainguard.live.instrument", "patch_lightning"),
    "pytorch_lightning.trainer.trainer": ("trainguard.live.instrument", "patch_lightning"),
}


class _Loader:
    """Runs the real loader, then hands the loaded module to trainguard's patch function."""

    def __init__(self, loader, target):
        self._loader = loader
        self._target = target

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            import importlib

            mod_name, fn = self._target
            try:
                patcher = importlib.import_module(mod_name)
            except ImportError:
                home = _os.environ.get("TRAINGUARD_HOME")
                if not home:
                    raise
                _sys.path.append(home)  # a child on another interpreter: our copy, after its own packages
                patcher = importlib.import_module(mod_name)
            getattr(patcher, fn)(module)
        except Exception as e:  # never break the user's import
            print(f"trainguard: cannot attach to {module.__name__} ({type(e).__name__}: {e}); "
                  "the run is guarded by signals only", file=_sys.stderr)


class _Finder:
    """A ``sys.meta_path`` finder that only wraps the loader of the modules in ``_TARGETS``."""

    def __init__(self):
        self._busy = set()

    def find_spec(self, name, path=None, target=None):
        if name not in _TARGETS or name in self._busy:
            return None
        self._busy.add(name)
        try:
            for finder in _sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy.discard(name)
        if spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, _TARGETS[name])
        return spec


def _install() -> None:
    if _os.environ.get("TRAINGUARD_INSTRUMENT", "1") == "0":
        return
    if not any(isinstance(f, _Finder) or type(f).__name__ == "_Finder" for f in _sys.meta_path):
        _sys.meta_path.insert(0, _Finder())


try:
    _chain()
except Exception as _e:  # the shadowed file's own error, reported as site would
    print(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(_e).__name__}: {_e}", file=_sys.stderr)
try:
    _install()
except Exception as _e:
    print(f"trainguard: cannot instrument this process ({type(_e).__name__}: {_e}); it runs unguarded",
          file=_sys.stderr)
