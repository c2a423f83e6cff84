"""`engine.policy`: the policies' public path (docs/design.md 3, `engine.policy.load_policy`).

Policies live in `engine/policies/` (model, fields, reading, checkpoint, sb3, torch_convert,
policy_cache); this module hands on the names of the former `engine/policy.py`, so code
written against the design's path keeps working. New code imports from `engine.policies.*`."""

from .data.symbols import canonical_symbol  # noqa: F401
from .policies.checkpoint import (  # noqa: F401
    load_policy,
    policy_to_checkpoint,
    save_policy,
)
from .policies.fields import (  # noqa: F401
    parse_filename,
    parse_utc,
    policy_from_fields,
)
from .policies.model import (  # noqa: F401
    ACTIVATIONS,
    FORMAT,
    STATE_FEATURES,
    SUPPORTED,
    TRAINED_UNTIL_RANGE,
    ObsNorm,
    Policy,
    set_tanh,
    tanh32,
)
from .policies.reading import (  # noqa: F401
    check_zip_sizes,
    malformed,
    read_policy_bytes,
)
