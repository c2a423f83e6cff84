"""`engine.policy_cache`, kept as a path while the pipeline still imports it: the cache
of validated policies lives in `engine.policies.policy_cache`."""

from .policies.policy_cache import (  # noqa: F401
    CACHE_VERSION,
    cache_dir,
    load_policy_cached,
    payload_hash,
    temp_cache_root,
    usable_cache_dir,
)
