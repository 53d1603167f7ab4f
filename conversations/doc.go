// Package conversations keeps the responses of OpenAI's Responses API that
// were created with store: true, so that a later request naming one in
// previous_response_id continues its conversation, and so that
// GET /v1/responses/{id} and DELETE /v1/responses/{id} work.
//
// # What is stored
//
// A Record is one stored response: its id, the tenant and key that created
// it, the model, the creation time, the Response object as returned to the
// client, and Items, the whole conversation up to and including this
// response's output (every input item and every output item, as JSON, in
// order). Entities holds the counts of the sensitive-data labels found in
// the conversation so far (labels and counts only, never the matched
// values), so that a continuation is routed as the whole conversation, not
// only its last message, requires.
//
// The content is the conversation itself: the prompts, the answers, tool
// calls and their results. It has the same sensitivity as the prompts the
// gateway relays, and whatever sensitive data they held is stored here in
// the clear. A Redis deployment holds it until the record's TTL passes or
// it is deleted (DELETE /v1/responses/{id}); Redis persistence (RDB, AOF),
// replicas and backups may keep copies beyond that, so a Redis used as a
// conversation store should be secured and retained like the data it
// holds. The in-process Memory store loses everything on restart.
//
// # Ownership
//
// A record belongs to its Tenant: Get and Delete take the caller's tenant
// and answer ErrNotFound for an id that is unknown, expired, or another
// tenant's, so a tenant cannot learn whether another tenant's id exists,
// let alone read or delete it. Ids are chosen by the gateway; a client
// may name any id, and the tenant comes from its authenticated key.
//
// # Bounds
//
//   - Every record expires after the TTL given to Put (which must be
//     positive); an expired record is never returned.
//   - A record is at most MaxRecordBytes (16 MiB) encoded; Put refuses a
//     larger one with ErrTooLarge. Since each record carries the whole
//     conversation so far, this also bounds how long a conversation can
//     grow.
//   - Memory holds at most maxEntries records and maxBytes of content
//     (see NewMemory), evicting the least recently used (written or read)
//     first; a record larger than maxBytes is refused with ErrTooLarge.
//   - Redis holds one string value (the Record as JSON) per record, under
//     "<prefix>:{conv:<tenant>}:<id>", written with SET ... PX; Redis's own
//     maxmemory policy is what bounds it beyond the TTLs.
//
// Both stores are safe for concurrent use. Stored JSON (Response and
// Items) is returned compacted: insignificant whitespace removed, the
// values and strings otherwise unchanged.
package conversations
