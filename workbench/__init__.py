"""simledger from Python: open a run's log or a whole study and get its tables as pandas DataFrames.

>>> import simledger
>>> run = simledger.open_run("results/runs/baseline_101.db")    # doctest: +SKIP
>>> run.turns()[["turn", "fees", "gini_wealth"]].tail(3)          # doctest: +SKIP
>>> study = simledger.open_study("results")                        # doctest: +SKIP
>>> study.turns().groupby(["scenario", "turn"]).gini_wealth.mean()  # doctest: +SKIP

The engine, ledger and study live in the subpackages (``simledger.ledger``, ...).
Every ``import simledger.<sub>`` runs this file first, so the names below are
imported on first use (PEP 562), keeping the command line and worker processes
from loading the readers they do not need.
"""

from importlib import import_module

_LAZY = {"open_run": "reader", "RunLog": "reader", "open_study": "studies", "Study": "studies"}

__all__ = ["open_run", "open_study", "RunLog", "Study", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("simledger")
        except PackageNotFoundError:  # a source tree that is not installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "__version__"])
