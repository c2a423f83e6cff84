"""Plain-Python references that the kernels are tested against.

Each area keeps its reference in its own module (naive_features, naive_simulate,
naive_metrics) so it reads top to bottom; this module gathers them under one name."""

from naive_features import *  # noqa: F401,F403
from naive_metrics import *  # noqa: F401,F403
from naive_simulate import *  # noqa: F401,F403
