"""The example notebook runs from top to bottom, and is the one generated from its percent-format script.

Its code cells are executed in order in one namespace, as a Jupyter kernel would
run them (the notebook uses no IPython magics), so CI needs no kernel or Jupyter
packages. It builds a small study of its own when the folder it reads is missing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_maker():
    spec = importlib.util.spec_from_file_location("make_notebook", EXAMPLES / "make_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebook_is_generated_from_the_script():
    maker = load_maker()
    assert (EXAMPLES / "study_notebook.ipynb").read_text(encoding="utf-8") == maker.render(
        (EXAMPLES / "study_notebook.py").read_text(encoding="utf-8")), "run python examples/make_notebook.py"


def test_the_notebook_runs_and_shows_gini_per_regime_and_two_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMLEDGER_STUDY", str(tmp_path / "study"))
    notebook = json.loads((EXAMPLES / "study_notebook.ipynb").read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__main__"}
    plt.close("all")
    for index, cell in enumerate(c for c in notebook["cells"] if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"<cell {index}>", "exec"), namespace)
    try:
        assert len(plt.get_fignums()) == 2, "the Gini figure and the two-run figure"
        gini_axes = plt.figure(plt.get_fignums()[0]).axes
        assert [len(axis.lines) for axis in gini_axes] == [3, 3], "one line per regime in each panel"
        assert set(namespace["gini_at_end"].index) == {"baseline", "coordination_push", "high_compute_cost"}
        assert namespace["gini_at_end"].loc["high_compute_cost", ("gini_wealth", "mean")] > \
            namespace["gini_at_end"].loc["baseline", ("gini_wealth", "mean")], "the paper's inequality finding"
        comparison = namespace["comparison"]
        assert list(comparison.columns) == ["baseline_101", "high_compute_cost_101", "ratio"]
        assert comparison.loc["fees", "ratio"] > 1, "dearer compute, higher fees"
    finally:
        plt.close("all")
