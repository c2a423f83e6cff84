"""`engine.policy_cache`: a former public path, kept for code written against it; nothing
in foldgate imports it. The cache of validated policies lives in
`engine.policies.policy_cache`, its directory's rules in `engine.cache_root`."""

from .cache_root import cache_dir, temp_cache_root, usable_cache_dir  # noqa: F401
from .policies.policy_cache import CACHE_VERSION, load_policy_cached, payload_hash  # noqa: F401
