import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for p in (str(TESTS), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

# CUDA kernels run in Numba's simulator where there is no GPU.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "0")
