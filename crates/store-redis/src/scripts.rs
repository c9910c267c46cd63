//! The Lua scripts: every read-then-write step, each atomic on the server.
//!
//! Numbers cross into Lua as strings and back out through `string.format`, never through Lua's
//! own number-to-string conversion, which keeps only 14 significant digits.

use redis::Script;

/// Takes a free slot. KEYS: lease, teardown, fence. ARGV: now, holder, lease expiry, key
/// lifetime (ms), teardown (ms). Returns the fencing token, or nil when the slot is held or
/// tearing down. A lease that lapsed without a release blocks the slot until its expiry plus
/// the teardown, as a released one does.
const ACQUIRE: &str = r"
local now = tonumber(ARGV[1])
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
if exp and now < exp + tonumber(ARGV[5]) then return false end
local until_ms = tonumber(redis.call('GET', KEYS[2]))
if until_ms and now < until_ms then return false end
redis.call('SET', KEYS[3], ARGV[1], 'NX')
local token = string.format('%d', redis.call('INCR', KEYS[3]))
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'token', token, 'holder', ARGV[2], 'exp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return token
";

/// Extends a lease. KEYS: lease, fence. ARGV: token, holder, new expiry, key lifetime (ms).
/// Returns 1 when extended, 0 when lost. A lease whose key Redis already dropped is still ours
/// if the fence has not moved since we took it: nobody acquired or released the slot meanwhile.
const RENEW: &str = r"
local v = redis.call('HMGET', KEYS[1], 'token', 'holder')
if v[1] == ARGV[1] and v[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'exp', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
if v[1] == false and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('HSET', KEYS[1], 'token', ARGV[1], 'holder', ARGV[2], 'exp', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
";

/// Ends a lease into the teardown block. KEYS: lease, teardown, fence. ARGV: token, holder,
/// end of teardown, teardown (ms). Moving the fence makes the released token useless for
/// renewing. Returns 1 when released, 0 when the lease was not ours any more.
const RELEASE: &str = r"
local v = redis.call('HMGET', KEYS[1], 'token', 'holder')
local ours = v[1] == ARGV[1] and v[2] == ARGV[2]
if not ours and not (v[1] == false and redis.call('GET', KEYS[3]) == ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
end
return 1
";

/// Reads a slot. KEYS: lease, teardown. Returns holder, lease expiry, end of teardown (each
/// nil when absent); the caller interprets them against its clock.
const STATE: &str = r"
local v = redis.call('HMGET', KEYS[1], 'holder', 'exp')
return {v[1], v[2], redis.call('GET', KEYS[2])}
";

/// One token from a bucket. KEYS: bucket. ARGV: now (ms), refill per ms, burst, key lifetime
/// (ms). Returns 1 when a token was taken. The same arithmetic as `console::MemoryThrottle`.
const BUCKET: &str = r"
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
if now > ts then
  tokens = tokens + (now - ts) * rate
  ts = now
end
if tokens > burst then tokens = burst end
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', ts))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return ok
";

/// Removes a grant if it is still the one pushed by a request. KEYS: grant. ARGV: request id.
const TAKE: &str = r"
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).request_id == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// The compiled scripts (their SHA1s); sent with `EVALSHA`, loaded again after a Redis restart.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub acquire: Script,
    pub renew: Script,
    pub release: Script,
    pub state: Script,
    pub bucket: Script,
    pub take: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            state: Script::new(STATE),
            bucket: Script::new(BUCKET),
            take: Script::new(TAKE),
        }
    }
}
