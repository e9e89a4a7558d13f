"""Rate limiting shared across processes: a token bucket and a sliding window, each one Lua
script on one hash-tagged key (``{ns}:ratelimit:{<name>}``), timed by the server's clock.
Callers over the limit wait; nothing is dropped. See docs/design.md, "Rate limiting"."""

from redis_streaming.ratelimit.limiters import RateLimiter, SlidingWindow, TokenBucket, limiter
from redis_streaming.ratelimit.spec import Algorithm, RateLimit

__all__ = ["Algorithm", "RateLimit", "RateLimiter", "SlidingWindow", "TokenBucket", "limiter"]
