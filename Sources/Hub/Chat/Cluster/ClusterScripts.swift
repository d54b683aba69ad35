import Protocol

// The Lua scripts that change cluster state in Redis. Each runs atomically, so every decision
// that must be made once for the whole cluster ("this user's first connection in the channel
// anywhere", "over the connection limit", "this node is dead") is made inside one of them, and
// each publishes the matching event on the state channel in the same step (mirrors on every
// node follow those events).
//
// Layout, all under the cluster prefix `P` (`<cluster-name>:`):
// - `P p:<channel>`    HASH  `c|<node>|<user>` = 1 (the node has the user in the channel),
//                            `u|<user>` = how many nodes have them, `i|<user>` = "role\nname"
// - `P nchans:<node>`  HASH  channel → users of that node in it (what the janitor must visit)
// - `P online`         HASH  `c|<node>|<user>` = connections on that node, `t|<user>` = total,
//                            `r|<user>` = role
// - `P node:<node>`    STRING, PX = node TTL: alive while it exists (heartbeat)
// - `P nodes`          ZSET  node → last heartbeat (ms): the nodes the janitor watches
// - `P janitor`        STRING, PX = lease: the node that runs the janitor
// Node ids come first in fields (`c|<node>|<user>`): ClusterState admits no `|` in them, so
// the user id is whatever follows (contract user ids have neither `|` nor newlines either).
//
// Events on `P state` (text, "\n"-separated, the free-text field last):
// `pj\n<channel>\n<user>\n<role>\n<name>`, `pl\n<channel>\n<user>`, `on\n<user>\n<role>`,
// `off\n<user>`, `st\n<user>\n<status>`, `as\n<origin node>\n<service>\n<client>\n<agent or empty>`,
// `rl\n<origin node>` (reload assignments from the store: an `as` of that node was lost).
enum ClusterScripts {
    /// KEYS: p:<ch>, nchans:<node>. ARGV: node, user, info, channel, state channel.
    /// 1 when this is the user's first node in the channel (the caller publishes `join`).
    static let presenceJoin = ClusterScript("""
    local f = 'c|'..ARGV[1]..'|'..ARGV[2]
    if redis.call('HSETNX', KEYS[1], f, '1') == 0 then return 0 end
    redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
    redis.call('HSET', KEYS[1], 'i|'..ARGV[2], ARGV[3])
    if redis.call('HINCRBY', KEYS[1], 'u|'..ARGV[2], 1) == 1 then
      redis.call('PUBLISH', ARGV[5], 'pj\\n'..ARGV[4]..'\\n'..ARGV[2]..'\\n'..ARGV[3])
      return 1
    end
    return 0
    """)

    /// KEYS: p:<ch>, nchans:<node>. ARGV: node, user, channel, state channel.
    /// 1 when this was the user's last node in the channel (the caller publishes `leave`).
    static let presenceLeave = ClusterScript("""
    local f = 'c|'..ARGV[1]..'|'..ARGV[2]
    if redis.call('HDEL', KEYS[1], f) == 0 then return 0 end
    if redis.call('HINCRBY', KEYS[2], ARGV[3], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[3]) end
    if redis.call('HINCRBY', KEYS[1], 'u|'..ARGV[2], -1) <= 0 then
      redis.call('HDEL', KEYS[1], 'u|'..ARGV[2], 'i|'..ARGV[2])
      redis.call('PUBLISH', ARGV[4], 'pl\\n'..ARGV[3]..'\\n'..ARGV[2])
      return 1
    end
    return 0
    """)

    /// Makes one node's members of one channel exactly the given ones (after a reconnect or a
    /// reap of a node that was alive after all). KEYS: p:<ch>, nchans:<node>. ARGV: node,
    /// channel, state channel, then user, info pairs. Returns the cluster-wide changes as
    /// kind ('j'/'l'), user, info triples.
    static let presenceSync = ClusterScript("""
    local node, ch, ctl = ARGV[1], ARGV[2], ARGV[3]
    local prefix = 'c|'..node..'|'
    local want = {}
    for i = 4, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end
    local out = {}
    local kept = 0
    local all = redis.call('HGETALL', KEYS[1])
    for i = 1, #all, 2 do
      local f = all[i]
      if string.sub(f, 1, #prefix) == prefix then
        local user = string.sub(f, #prefix + 1)
        if want[user] then
          want[user] = nil
          kept = kept + 1
        else
          redis.call('HDEL', KEYS[1], f)
          if redis.call('HINCRBY', KEYS[1], 'u|'..user, -1) <= 0 then
            local info = redis.call('HGET', KEYS[1], 'i|'..user) or ''
            redis.call('HDEL', KEYS[1], 'u|'..user, 'i|'..user)
            redis.call('PUBLISH', ctl, 'pl\\n'..ch..'\\n'..user)
            out[#out + 1] = 'l'; out[#out + 1] = user; out[#out + 1] = info
          end
        end
      end
    end
    for user, info in pairs(want) do
      kept = kept + 1
      redis.call('HSET', KEYS[1], prefix..user, '1', 'i|'..user, info)
      if redis.call('HINCRBY', KEYS[1], 'u|'..user, 1) == 1 then
        redis.call('PUBLISH', ctl, 'pj\\n'..ch..'\\n'..user..'\\n'..info)
        out[#out + 1] = 'j'; out[#out + 1] = user; out[#out + 1] = info
      end
    end
    if kept > 0 then redis.call('HSET', KEYS[2], ch, kept) else redis.call('HDEL', KEYS[2], ch) end
    return out
    """)

    /// KEYS: online. ARGV: node, user, role, state channel. Counts the connection in (always,
    /// so that the close of a refused one is symmetric) and returns the user's total before it:
    /// the caller refuses when that is at the limit already.
    static let onlineConnect = ClusterScript("""
    local t = tonumber(redis.call('HGET', KEYS[1], 't|'..ARGV[2]) or '0')
    redis.call('HINCRBY', KEYS[1], 'c|'..ARGV[1]..'|'..ARGV[2], 1)
    redis.call('HINCRBY', KEYS[1], 't|'..ARGV[2], 1)
    if t <= 0 then
      redis.call('HSET', KEYS[1], 'r|'..ARGV[2], ARGV[3])
      redis.call('PUBLISH', ARGV[4], 'on\\n'..ARGV[2]..'\\n'..ARGV[3])
    end
    return t
    """)

    /// KEYS: online. ARGV: node, user, state channel.
    static let onlineDisconnect = ClusterScript("""
    local f = 'c|'..ARGV[1]..'|'..ARGV[2]
    local c = tonumber(redis.call('HGET', KEYS[1], f) or '0')
    if c <= 0 then return 0 end
    if c == 1 then redis.call('HDEL', KEYS[1], f) else redis.call('HINCRBY', KEYS[1], f, -1) end
    if redis.call('HINCRBY', KEYS[1], 't|'..ARGV[2], -1) <= 0 then
      redis.call('HDEL', KEYS[1], 't|'..ARGV[2], 'r|'..ARGV[2])
      redis.call('PUBLISH', ARGV[3], 'off\\n'..ARGV[2])
    end
    return 1
    """)

    /// Makes one node's connection counts exactly the given ones. KEYS: online. ARGV: node,
    /// state channel, then user, count, role triples.
    static let onlineSync = ClusterScript("""
    local node, ctl = ARGV[1], ARGV[2]
    local prefix = 'c|'..node..'|'
    local want = {}
    for i = 3, #ARGV, 3 do want[ARGV[i]] = {tonumber(ARGV[i + 1]), ARGV[i + 2]} end
    local have = {}
    local all = redis.call('HGETALL', KEYS[1])
    for i = 1, #all, 2 do
      local f = all[i]
      if string.sub(f, 1, #prefix) == prefix then have[string.sub(f, #prefix + 1)] = tonumber(all[i + 1]) end
    end
    for user, n in pairs(have) do
      if not want[user] then
        redis.call('HDEL', KEYS[1], prefix..user)
        if redis.call('HINCRBY', KEYS[1], 't|'..user, -n) <= 0 then
          redis.call('HDEL', KEYS[1], 't|'..user, 'r|'..user)
          redis.call('PUBLISH', ctl, 'off\\n'..user)
        end
      end
    end
    for user, w in pairs(want) do
      local old = have[user] or 0
      if w[1] ~= old then
        redis.call('HSET', KEYS[1], prefix..user, w[1])
        local t = redis.call('HINCRBY', KEYS[1], 't|'..user, w[1] - old)
        if t - (w[1] - old) <= 0 and t > 0 then
          redis.call('HSET', KEYS[1], 'r|'..user, w[2])
          redis.call('PUBLISH', ctl, 'on\\n'..user..'\\n'..w[2])
        end
      end
    end
    return 1
    """)

    /// KEYS: janitor lease. ARGV: node, lease ms. 1 while this node holds the lease.
    static let lease = ClusterScript("""
    local v = redis.call('GET', KEYS[1])
    if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
    if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
    return 0
    """)

    /// KEYS: nodes. ARGV: prefix. The watched nodes whose liveness key is gone.
    static let deadNodes = ClusterScript("""
    local dead = {}
    for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      if redis.call('EXISTS', ARGV[1]..'node:'..n) == 0 then dead[#dead + 1] = n end
    end
    return dead
    """)

    /// Removes everything of a dead node, unless it beat again meanwhile. KEYS: nchans:<node>,
    /// online, nodes, node:<node>. ARGV: node, prefix, state channel. Returns the presence
    /// leaves as channel, user, info triples (the caller publishes `leave` for each).
    static let reap = ClusterScript("""
    if redis.call('EXISTS', KEYS[4]) == 1 then return {} end
    local node, pre, ctl = ARGV[1], ARGV[2], ARGV[3]
    local prefix = 'c|'..node..'|'
    local out = {}
    for _, ch in ipairs(redis.call('HKEYS', KEYS[1])) do
      local key = pre..'p:'..ch
      local all = redis.call('HGETALL', key)
      for i = 1, #all, 2 do
        local f = all[i]
        if string.sub(f, 1, #prefix) == prefix then
          local user = string.sub(f, #prefix + 1)
          redis.call('HDEL', key, f)
          if redis.call('HINCRBY', key, 'u|'..user, -1) <= 0 then
            local info = redis.call('HGET', key, 'i|'..user) or ''
            redis.call('HDEL', key, 'u|'..user, 'i|'..user)
            redis.call('PUBLISH', ctl, 'pl\\n'..ch..'\\n'..user)
            out[#out + 1] = ch; out[#out + 1] = user; out[#out + 1] = info
          end
        end
      end
    end
    redis.call('DEL', KEYS[1])
    local all = redis.call('HGETALL', KEYS[2])
    for i = 1, #all, 2 do
      local f = all[i]
      if string.sub(f, 1, #prefix) == prefix then
        local user = string.sub(f, #prefix + 1)
        redis.call('HDEL', KEYS[2], f)
        if redis.call('HINCRBY', KEYS[2], 't|'..user, -tonumber(all[i + 1])) <= 0 then
          redis.call('HDEL', KEYS[2], 't|'..user, 'r|'..user)
          redis.call('PUBLISH', ctl, 'off\\n'..user)
        end
      end
    end
    redis.call('ZREM', KEYS[3], node)
    return out
    """)
}

/// A script and its SHA1, sent as EVALSHA (a presence change is then ~100 bytes, not the
/// script's ~1 KB). Loaded with SCRIPT LOAD on every resync (after every reconnect); a
/// NOSCRIPT answer counts as a failed command: local answer now, resync (and reload) next.
struct ClusterScript: Sendable {
    let source: String
    let sha: String

    init(_ source: String) {
        self.source = source
        // The scripts are constants: a failing SHA-1 is a broken build, never input.
        guard let digest = Digest.sha1.hash(Array(source.utf8)) else { preconditionFailure("SHA-1 unavailable") }
        sha = digest.map { String($0 >> 4, radix: 16) + String($0 & 15, radix: 16) }.joined()
    }

    static let all: [ClusterScript] = [
        ClusterScripts.presenceJoin, ClusterScripts.presenceLeave, ClusterScripts.presenceSync,
        ClusterScripts.onlineConnect, ClusterScripts.onlineDisconnect, ClusterScripts.onlineSync,
        ClusterScripts.lease, ClusterScripts.deadNodes, ClusterScripts.reap,
    ]
}
