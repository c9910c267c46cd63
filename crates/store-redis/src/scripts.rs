//! The Lua scripts: every read-then-write step, each atomic on the server.
//!
//! Numbers cross into Lua as strings and back out through `string.format`, never through Lua's
//! own number-to-string conversion, which keeps only 14 significant digits.

use redis::Script;

/// The epoch function, which every script that takes a lease on an instance (a session slot,
/// its console's ownership) starts with, so the rule is written once.
///
/// `epoch_end(epoch, now, wait)`: when the instance's epoch lets leases be taken. The epoch key
/// is the time this Redis first saw the instance; it never expires, so it goes missing only
/// when Redis lost its data (a restart without persistence, a flush). Leases from before that
/// loss are gone too, yet their holders may still be writing until they renew and find out,
/// or fail to renew and close: both happen before their lease would have expired, at most one
/// lease time after the loss. So a missing epoch is written as now, and no lease of the
/// instance is taken until one lease time (`wait`) after it.
const EPOCH_FN: &str = r"
local function epoch_end(epoch, now, wait)
  local e = tonumber(redis.call('GET', epoch))
  if not e then
    redis.call('SET', epoch, string.format('%d', now))
    e = now
  end
  return e + wait
end
";

/// The slot functions every script that takes a slot or checks it starts with (after
/// [`EPOCH_FN`]), so the rule is written once in Lua (and once in Rust, `console::slot_state`,
/// which reads the same raw fields; the store contract checks the two agree at every edge).
///
/// `slot_free(lease, teardown, epoch, now, teardown_ms, wait)`: whether nobody holds the slot,
/// no teardown block is running and the epoch has opened. A lease that lapsed without a
/// release blocks the slot until its expiry plus the teardown, as a released one does.
/// `slot_fields(lease, teardown, epoch, now, wait)`: holder, lease expiry and end of teardown
/// (each nil when absent; a closed epoch reads as a teardown until it opens), for the caller to
/// interpret against its clock.
/// `take_slot(lease, teardown, fence, now, holder, exp, lifetime)`: gives the slot to `holder`
/// with the next fencing token and returns the token. The caller has checked it is free.
const SLOT: &str = r"
local function slot_free(lease, teardown, epoch, now, teardown_ms, wait)
  if now < epoch_end(epoch, now, wait) then return false end
  local v = redis.call('HMGET', lease, 'holder', 'exp')
  local exp = tonumber(v[2])
  if v[1] and exp and now < exp + teardown_ms then return false end
  local until_ms = tonumber(redis.call('GET', teardown))
  if until_ms and now < until_ms then return false end
  return true
end
local function slot_fields(lease, teardown, epoch, now, wait)
  local v = redis.call('HMGET', lease, 'holder', 'exp')
  local until_ms = redis.call('GET', teardown)
  local opens = epoch_end(epoch, now, wait)
  if now < opens and (not tonumber(until_ms) or tonumber(until_ms) < opens) then
    until_ms = string.format('%d', opens)
  end
  return {v[1], v[2], until_ms}
end
local function take_slot(lease, teardown, fence, now, holder, exp, lifetime)
  redis.call('SET', fence, now, 'NX')
  local token = string.format('%d', redis.call('INCR', fence))
  redis.call('DEL', lease, teardown)
  redis.call('HSET', lease, 'token', token, 'holder', holder, 'exp', exp)
  redis.call('PEXPIRE', lease, lifetime)
  return token
end
";

/// Takes a free slot. KEYS: lease, teardown, fence, epoch. ARGV: now, holder, lease expiry, key
/// lifetime (ms), teardown (ms), epoch wait (ms). Returns the fencing token, or nil when the
/// slot is held or tearing down.
const ACQUIRE: &str = r"
local now = tonumber(ARGV[1])
if not slot_free(KEYS[1], KEYS[2], KEYS[4], now, tonumber(ARGV[5]), tonumber(ARGV[6])) then
  return false
end
return take_slot(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
";

/// Stores a grant if the slot it opens is free: a hash whose every field is written, so it
/// replaces any previous grant wholly, expiring at the grant's expiry. KEYS: grant, then lease,
/// teardown and epoch for a serial port (none for an OS user: no slot to check). ARGV: now,
/// teardown (ms), grant expiry, key, principal ARN, request id, epoch wait (ms). Returns
/// `{'stored'}`, or `{'refused', holder, lease expiry, end of teardown}`.
const PUSH: &str = r"
local now = tonumber(ARGV[1])
local wait = tonumber(ARGV[7])
if #KEYS == 4 and not slot_free(KEYS[2], KEYS[3], KEYS[4], now, tonumber(ARGV[2]), wait) then
  local f = slot_fields(KEYS[2], KEYS[3], KEYS[4], now, wait)
  return {'refused', f[1], f[2], f[3]}
end
redis.call('HSET', KEYS[1], 'key', ARGV[4], 'principal_arn', ARGV[5], 'request_id', ARGV[6],
  'exp', ARGV[3], 'used', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return {'stored'}
";

/// Opens a session on a grant: takes the slot and marks the grant used, if the live grant was
/// pushed by the request id and is unused and the slot is free. KEYS: grant, lease, teardown,
/// fence, epoch. ARGV: now, request id, holder, lease expiry, lease key lifetime (ms), teardown
/// (ms), epoch wait (ms).
/// Returns `{'opened', token}`, `{'gone'}` (no live grant from that request), or
/// `{'spent' | 'busy', holder, lease expiry, end of teardown}`.
const OPEN: &str = r"
local now = tonumber(ARGV[1])
local wait = tonumber(ARGV[7])
local g = redis.call('HMGET', KEYS[1], 'request_id', 'exp', 'used')
local exp = tonumber(g[2])
if g[1] ~= ARGV[2] or not exp or now >= exp then return {'gone'} end
if g[3] ~= '0' then
  local f = slot_fields(KEYS[2], KEYS[3], KEYS[5], now, wait)
  return {'spent', f[1], f[2], f[3]}
end
if not slot_free(KEYS[2], KEYS[3], KEYS[5], now, tonumber(ARGV[6]), wait) then
  local f = slot_fields(KEYS[2], KEYS[3], KEYS[5], now, wait)
  return {'busy', f[1], f[2], f[3]}
end
local token = take_slot(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[1], 'used', '1')
return {'opened', token}
";

/// Extends a lease. KEYS: lease, fence. ARGV: token, holder, new expiry, key lifetime (ms).
/// Returns 1 when extended, 0 when lost. A lease whose key Redis already dropped is still ours
/// if the fence has not moved since we took it: nobody acquired or released the slot meanwhile.
/// A Redis that lost its data lost the fence too, so its former holders read "lost".
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

/// Reads a slot. KEYS: lease, teardown, epoch. ARGV: now, epoch wait (ms). Returns holder,
/// lease expiry, end of teardown (each nil when absent); the caller interprets them against
/// its clock.
const STATE: &str = r"
return slot_fields(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]))
";

/// The instance's epoch, written as now when missing. KEYS: epoch. ARGV: now, epoch wait (ms).
/// Returns when its slots open (ms).
const EPOCH: &str = r"
return string.format('%d', epoch_end(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])))
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
if redis.call('HGET', KEYS[1], 'request_id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// Takes or renews an instance's console ownership. KEYS: owner, owner fence, epoch. ARGV: now,
/// node, the token the caller holds (empty for a take), new expiry, key lifetime (ms), epoch
/// wait (ms). Returns the token the node holds after the call, or nil. A lease whose expiry has
/// passed is gone for both: a renewal never brings it back, a take may replace it. Like the
/// slot fences, the counter starts at the current time, so tokens keep increasing when Redis
/// loses it.
const HOLD: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'node', 'token', 'exp')
local exp = tonumber(v[3])
local live = v[1] and exp and now < exp
if ARGV[3] ~= '' then
  if not (live and v[1] == ARGV[2] and v[2] == ARGV[3]) then return false end
  redis.call('HSET', KEYS[1], 'exp', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return v[2]
end
if live or now < epoch_end(KEYS[3], now, tonumber(ARGV[6])) then return false end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
local token = string.format('%d', redis.call('INCR', KEYS[2]))
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'node', ARGV[2], 'token', token, 'exp', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return token
";

/// Gives an instance's console up if the node holds it with the token. KEYS: owner. ARGV: node,
/// token. Returns 1 when released.
const DISOWN: &str = r"
local v = redis.call('HMGET', KEYS[1], 'node', 'token')
if v[1] == ARGV[1] and v[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// A node's announcement: its hash, wholly rewritten, then its name in the set (in that order
/// within the script, so `NODES` never finds the name without the hash it announces). KEYS:
/// node, names. ARGV: name, address, version, now, expiry, key lifetime (ms).
const ANNOUNCE: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'address', ARGV[2], 'version', ARGV[3], 'renewed', ARGV[4],
  'exp', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
";

/// Reads the announcements of the named nodes and removes from the set the names whose hash
/// Redis dropped. KEYS: names, then each node's hash. ARGV: the names, in the same order.
/// Returns name, address, version, renewed, expiry for each hash found; the caller compares
/// the expiries with its clock.
const NODES: &str = r"
local out = {}
for i, name in ipairs(ARGV) do
  local v = redis.call('HMGET', KEYS[i + 1], 'address', 'version', 'renewed', 'exp')
  if v[1] and v[2] and v[3] and v[4] then
    table.insert(out, name)
    table.insert(out, v[1])
    table.insert(out, v[2])
    table.insert(out, v[3])
    table.insert(out, v[4])
  else
    redis.call('SREM', KEYS[1], name)
  end
end
return out
";

/// An instance's shared state: `KEYS[1]` the states hash, `ARGV[1]` the instance, `ARGV[2]` its
/// state, `ARGV[3]` the order (`-` for none). Raises the sequence number; returns it.
const RECORD: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
local seq = 0
if v then seq = tonumber(string.match(v, '^%S+ (%d+)')) or 0 end
seq = seq + 1
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. seq .. ' ' .. ARGV[3])
return seq
";

/// The owner's write of its VM's state: as `RECORD`, but keeping the sequence number and order,
/// and only while the sequence number is still `ARGV[3]` (0: never recorded). 1 if written.
const PUBLISH: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  if ARGV[3] ~= '0' then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' 0 -')
  return 1
end
local seq, order = string.match(v, '^%S+ (%d+) (%S+)$')
if seq ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. seq .. ' ' .. order)
return 1
";

/// Moves a session entry's expiry. KEYS: sessions hash. ARGV: field, token, expiry. Returns
/// the end request waiting for the session (who, reason), or nil; nil too when the entry is
/// gone or belongs to another lease.
const SESSION_REFRESH: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
local e = cjson.decode(v)
if e.token ~= ARGV[2] then return false end
e.exp = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
if e.end_by then return {e.end_by, e.end_reason} end
return false
";

/// Removes a session entry, if it is the lease's. KEYS: sessions hash. ARGV: field, token.
const SESSION_REMOVE: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
if cjson.decode(v).token ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
";

/// The live entries, dropping the lapsed ones. KEYS: sessions hash. ARGV: now. Returns field,
/// value, field, value…
const SESSION_LIST: &str = r"
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local live = {}
for i = 1, #all, 2 do
  local ok, e = pcall(cjson.decode, all[i + 1])
  if ok and tonumber(e.exp) and tonumber(e.exp) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live[#live + 1] = all[i]
    live[#live + 1] = all[i + 1]
  end
end
return live
";

/// Marks a live session as asked to end and tells every node. KEYS: sessions hash. ARGV:
/// field, now, by, reason, channel. Returns the session's lease token, or nil when no live
/// session is on the slot.
const SESSION_END: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
local e = cjson.decode(v)
if tonumber(e.exp) <= tonumber(ARGV[2]) then return false end
e.end_by = ARGV[3]
e.end_reason = ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
redis.call('PUBLISH', ARGV[5], cjson.encode({field = ARGV[1], token = e.token, by = ARGV[3], reason = ARGV[4]}))
return e.token
";

/// The compiled scripts (their SHA1s); sent with `EVALSHA`, loaded again after a Redis restart.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub push: Script,
    pub open: Script,
    pub acquire: Script,
    pub renew: Script,
    pub release: Script,
    pub state: Script,
    pub epoch: Script,
    pub bucket: Script,
    pub take: Script,
    pub hold: Script,
    pub disown: Script,
    pub announce: Script,
    pub nodes: Script,
    pub record: Script,
    pub publish: Script,
    pub session_refresh: Script,
    pub session_remove: Script,
    pub session_list: Script,
    pub session_end: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_slot = |body: &str| Script::new(&format!("{EPOCH_FN}{SLOT}{body}"));
        Self {
            push: with_slot(PUSH),
            open: with_slot(OPEN),
            acquire: with_slot(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            state: with_slot(STATE),
            epoch: with_slot(EPOCH),
            bucket: Script::new(BUCKET),
            take: Script::new(TAKE),
            hold: Script::new(&format!("{EPOCH_FN}{HOLD}")),
            disown: Script::new(DISOWN),
            announce: Script::new(ANNOUNCE),
            nodes: Script::new(NODES),
            record: Script::new(RECORD),
            publish: Script::new(PUBLISH),
            session_refresh: Script::new(SESSION_REFRESH),
            session_remove: Script::new(SESSION_REMOVE),
            session_list: Script::new(SESSION_LIST),
            session_end: Script::new(SESSION_END),
        }
    }
}
