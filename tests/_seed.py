"""Where the seed study lives: ``shared/seed`` beside the checkout (as CI places it), else /work/shared/seed."""

from pathlib import Path

_CANDIDATES = (Path(__file__).resolve().parents[2] / "shared" / "seed", Path("/work/shared/seed"))
SEED = next((path for path in _CANDIDATES if path.is_dir()), _CANDIDATES[0])
