"""Build the sample training archive that `foldgate demo` validates.

    python data/make_sample_archive.py [OUT_DIR]

The archive (Alpaca_trading_trained_<stamp>.zip) holds the shipped sample policies and a
training summary whose metrics meet every gating class; see engine/sample.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sample import build_sample_archive  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    print(build_sample_archive(out))
