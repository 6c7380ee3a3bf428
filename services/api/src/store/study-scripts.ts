import { LUA_HSET_JSON, redisScript } from './redis-script.js';

/** Lua: marks a closed batch done once every study in it has finished; returns its state. */
const LUA_COMPLETE_BATCH = `
local function completeBatchIfFinished(batchKey, now)
  local batch = redis.call('HMGET', batchKey, 'state', 'studyCount', 'doneStudies', 'failedStudies')
  local finished = tonumber(batch[3] or '0') + tonumber(batch[4] or '0')
  if batch[1] == 'closed' and finished >= tonumber(batch[2] or '0') then
    redis.call('HSET', batchKey, 'state', 'done', 'completedAt', now)
    return 'done'
  end
  return batch[1] or ''
end
`;

/** Lua: counts a finished study in its batch exactly once (the set remembers it). */
const LUA_FINISH_IN_BATCH = `
local function finishInBatch(batchKey, finishedKey, studyId, studyState, wasProcessing, now)
  if redis.call('SADD', finishedKey, studyId) == 1 then
    local counter = 'doneStudies'
    if studyState == 'failed' then counter = 'failedStudies' end
    redis.call('HINCRBY', batchKey, counter, 1)
    if wasProcessing then redis.call('HINCRBY', batchKey, 'processingStudies', -1) end
  end
  return completeBatchIfFinished(batchKey, now)
end
`;

/**
 * Creates a study and its images in one step, and refuses when the batch it joins is no
 * longer open (so `close` and a late chunk cannot interleave).
 *
 * Also makes the external-id claim permanent, in the same step, so a study and its claim
 * never outlive one another; and lists the study as a pending submission until its jobs are
 * enqueued, so one whose API was killed in between is found and settled. With an
 * Idempotency-Key, writes only while the key still holds the request's claim, and replaces the
 * claim by the entry naming the study, which lasts as long as a response would: a retry after
 * the API was killed finds the study, never a lapsed claim.
 *
 * KEYS: study, client index, batch, batch studies, external-id claim, pending submissions,
 * Idempotency-Key entry, ...images. ARGV: createdAt (ms), batchId or '', study fields (JSON),
 * the claim or '', the entry naming the study, its TTL (s), ...image fields (JSON). Returns 'ok',
 * 'claim_lost', or the batch's state.
 */
export const createStudyScript = redisScript(`${LUA_HSET_JSON}
if ARGV[4] ~= '' and redis.call('GET', KEYS[7]) ~= ARGV[4] then return 'claim_lost' end
if ARGV[2] ~= '' then
  local batchState = redis.call('HGET', KEYS[3], 'state')
  if batchState ~= 'open' then return batchState or 'missing' end
end
hsetJson(KEYS[1], ARGV[3])
local studyId = redis.call('HGET', KEYS[1], 'id')
redis.call('PERSIST', KEYS[5])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[7], ARGV[5], 'EX', ARGV[6])
  redis.call('HSET', KEYS[1], 'idempotencyRecordKey', KEYS[7])
end
for i = 8, #KEYS do hsetJson(KEYS[i], ARGV[i - 1]) end
redis.call('ZADD', KEYS[2], ARGV[1], studyId)
redis.call('ZADD', KEYS[6], ARGV[1], studyId)
if ARGV[2] ~= '' then
  local count = redis.call('HINCRBY', KEYS[3], 'studyCount', 1)
  -- Positions only grow: a study rolled back gives back its count, never its position, which the
  -- next study would then share (and paging by position could skip one of the two).
  redis.call('HSETNX', KEYS[3], 'lastPosition', count - 1)
  local position = redis.call('HINCRBY', KEYS[3], 'lastPosition', 1)
  redis.call('ZADD', KEYS[4], position, studyId)
end
return 'ok'
`);

/**
 * Removes a study that could not be fully submitted (its jobs were never enqueued), with its
 * images and index entries; in a batch, takes it out of the count and, if the batch was closed
 * meanwhile and every other study has finished, completes the batch.
 *
 * Also takes it off the pending submissions and frees its externalId mapping (only while it names
 * the study), in the same step: the mapping, made permanent with the records, must not outlive
 * them, or every later submission under that externalId would wait for a study that is gone.
 * Removing a study twice changes nothing more.
 *
 * KEYS: study, client index, batch, batch studies, pending submissions, externalId mapping,
 * ...images. ARGV: studyId, batchId or '', now (ISO), '1' when the study has an externalId.
 * Returns the batch's state, or ''.
 */
export const removeStudyScript = redisScript(`${LUA_COMPLETE_BATCH}
for i = 7, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if ARGV[4] == '1' and redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
if ARGV[2] == '' then return '' end
if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[3], 'studyCount', -1) end
return completeBatchIfFinished(KEYS[3], ARGV[3])
`);

/**
 * Erases a study's records: the study, its images and webhook deliveries, and its entries in the
 * client's index, its batch's listing and finished set, the pending submissions, the finished
 * studies, its externalId mapping and its Idempotency-Key entry (each only while it still names the
 * study). A finished study leaves its batch's counters as they were; one still queued or processing
 * leaves its batch's count (and the processing count), which it would never have finished, and the
 * batch, if closed with every other study finished, is completed. With ARGV[4] '1' a study still
 * queued or processing is refused. Erasing twice changes nothing more.
 *
 * KEYS: study, client index, batch studies, batch finished set, pending submissions, externalId
 * mapping, Idempotency-Key entry, finished studies, batch, ...images and deliveries. ARGV: studyId,
 * '1' when the study has an externalId, '1' when it has an Idempotency-Key entry, '1' to erase only
 * a finished study, now (ISO). Returns { 'erased' | 'erased_unfinished' | 'missing' | 'in_progress',
 * the batch's state or '' }.
 */
export const eraseStudyScript = redisScript(`${LUA_COMPLETE_BATCH}
local study = redis.call('HMGET', KEYS[1], 'state', 'batchId')
local state = study[1]
if not state then return {'missing', ''} end
local finished = state == 'done' or state == 'failed'
if not finished and ARGV[4] == '1' then return {'in_progress', ''} end
for i = 10, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local listed = redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if ARGV[2] == '1' and redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
if ARGV[3] == '1' then
  local entry = redis.call('GET', KEYS[7])
  if entry and string.find(entry, ARGV[1], 1, true) then redis.call('DEL', KEYS[7]) end
end
if finished then return {'erased', ''} end
local batchState = ''
if study[2] and study[2] ~= '' and listed == 1 then
  redis.call('HINCRBY', KEYS[9], 'studyCount', -1)
  if state == 'processing' then redis.call('HINCRBY', KEYS[9], 'processingStudies', -1) end
  batchState = completeBatchIfFinished(KEYS[9], ARGV[5])
end
return {'erased_unfinished', batchState}
`);

/**
 * Applies one image's result, once: a second delivery of the same result changes nothing.
 * Updates the study's counters and state and, for a study in a batch, the batch's counts.
 *
 * A study that finishes is listed among the finished studies, for the retention sweep, by when it
 * finished (its completedAt); a redelivery leaves that as it was.
 *
 * KEYS: image, study, batch, batch finished set, finished studies. ARGV: 'done' | 'failed', image
 * fields (JSON), finishedAt, failure reason, '1' when the study is in a batch, finishedAt (ms).
 * Returns { applied (0/1), study state, batch state or '', the study's fields (flat) once it
 * has finished, else an empty list }: a finished study is announced, and this saves reading it back.
 */
export const applyResultScript = redisScript(`${LUA_HSET_JSON}${LUA_COMPLETE_BATCH}${LUA_FINISH_IN_BATCH}
local imageState = redis.call('HGET', KEYS[1], 'state')
if not imageState then return {0, 'missing', ''} end
local inBatch = ARGV[5] == '1'
local applied = 0
local wasProcessing = false
if imageState ~= 'done' and imageState ~= 'failed' then
  applied = 1
  hsetJson(KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[1], 'state', ARGV[1])
  local counter = 'doneCount'
  if ARGV[1] == 'failed' then
    counter = 'failedCount'
    redis.call('HSETNX', KEYS[2], 'failureReason', ARGV[4])
  end
  redis.call('HINCRBY', KEYS[2], counter, 1)
  local study = redis.call('HMGET', KEYS[2], 'state', 'imageIds', 'doneCount', 'failedCount')
  wasProcessing = study[1] == 'processing'
  local finished = tonumber(study[3]) + tonumber(study[4])
  local nextState = 'processing'
  if finished >= #cjson.decode(study[2]) then
    nextState = 'done'
    if tonumber(study[4]) > 0 then nextState = 'failed' end
    redis.call('HSET', KEYS[2], 'completedAt', ARGV[3])
  elseif inBatch and not wasProcessing then
    redis.call('HINCRBY', KEYS[3], 'processingStudies', 1)
  end
  redis.call('HSET', KEYS[2], 'state', nextState)
end
local studyState = redis.call('HGET', KEYS[2], 'state')
local batchState = ''
if inBatch and (studyState == 'done' or studyState == 'failed') then
  local studyId = redis.call('HGET', KEYS[2], 'id')
  batchState = finishInBatch(KEYS[3], KEYS[4], studyId, studyState, wasProcessing, ARGV[3])
end
local finishedStudy = {}
if studyState == 'done' or studyState == 'failed' then
  finishedStudy = redis.call('HGETALL', KEYS[2])
  redis.call('ZADD', KEYS[5], 'NX', ARGV[6], redis.call('HGET', KEYS[2], 'id'))
end
return {applied, studyState, batchState, finishedStudy}
`);

/**
 * Erases a batch that is done and whose studies were all erased: its record, listing, finished
 * set and webhook delivery, and its entry in the client's batches. Leaves any other batch alone.
 *
 * KEYS: batch, batch studies, batch finished set, client's batches, the batch's delivery.
 * ARGV: batchId. Returns 'erased', or why not: 'missing', 'not_done', 'has_studies'.
 */
export const eraseEmptyBatchScript = redisScript(`
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'done' then return 'not_done' end
if redis.call('ZCARD', KEYS[2]) > 0 then return 'has_studies' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
redis.call('ZREM', KEYS[4], ARGV[1])
return 'erased'
`);

/**
 * Closes a batch to new studies; marks it done at once when every study already finished.
 * KEYS: batch. ARGV: now (ISO). Returns the batch's state, or 'missing'.
 */
export const closeBatchScript = redisScript(`${LUA_COMPLETE_BATCH}
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state == 'open' then redis.call('HSET', KEYS[1], 'state', 'closed', 'closedAt', ARGV[1]) end
return completeBatchIfFinished(KEYS[1], ARGV[1])
`);
